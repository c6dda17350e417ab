package models

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Limits of the validation rules, in characters.
const (
	UsernameMinLength   = 3
	UsernameMaxLength   = 32
	EmailMaxLength      = 254
	EmailLocalMaxLength = 64
)

// validateUsername returns what is wrong with a username, or "" if nothing is. Nothing is trimmed:
// surrounding spaces are an error, as any other character outside the allowed set.
func validateUsername(s string) string {
	if n := utf8.RuneCountInString(s); n < UsernameMinLength || n > UsernameMaxLength {
		return "must be 3 to 32 characters long"
	}
	for i := 0; i < len(s); i++ {
		if !isUsernameByte(s[i]) {
			return "may contain only letters A-Z a-z, digits 0-9, and _ . -"
		}
	}
	if !isAlphanumeric(s[0]) {
		return "must start with a letter or a digit"
	}
	return ""
}

func isAlphanumeric(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

func isUsernameByte(b byte) bool {
	return isAlphanumeric(b) || b == '_' || b == '.' || b == '-'
}

// validateEmail returns what is wrong with an email address, or "" if nothing is.
func validateEmail(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	// U+FFFD is what decoders put in place of bytes that were not UTF-8: never part of a real
	// address, and a sign that the one sent was mangled on the way.
	if strings.ContainsRune(s, utf8.RuneError) {
		return "must be valid UTF-8"
	}
	// Checked before parsing, so that any such character gets this message wherever it is: net/mail
	// refuses ASCII ones with a vaguer message, or strips them around an address, and lets every
	// one above U+007F through.
	if strings.ContainsFunc(s, isInvisibleInEmail) {
		return "must not contain control, format or space characters"
	}
	if utf8.RuneCountInString(s) > EmailMaxLength {
		return "must be at most 254 characters long"
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return "must be an email address such as name@example.com"
	}
	// ParseAddress also accepts "Name <name@example.com>", comments and surrounding spaces: anything
	// it had to strip means the input was not a bare address.
	if addr.Name != "" || addr.Address != s {
		return "must be a bare address such as name@example.com, without a display name"
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if utf8.RuneCountInString(local) > EmailLocalMaxLength {
		return "must have at most 64 characters before the @"
	}
	if !strings.Contains(domain, ".") {
		return "must have a domain with a dot, such as example.com"
	}
	// The key column holds EmailMaxLength characters, and normalizing can lengthen an address (ß
	// folds to ss, a ligature expands to its letters): one whose key does not fit is refused here
	// rather than by the database. An ASCII key is as long as its address.
	if !isASCII(s) && utf8.RuneCountInString(emailKey(s)) > EmailMaxLength {
		return "must be at most 254 characters long once normalized, where some characters such as ligatures count as several"
	}
	return ""
}

// emailInvisibleCategories are the Unicode categories refused in an email: control characters,
// format characters such as zero-width spaces and direction overrides, and space and line
// separators. No address needs them, and they let one address pass for another on screen, or
// break the lines of whatever later prints it.
var emailInvisibleCategories = []*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp}

func isInvisibleInEmail(r rune) bool {
	// In ASCII those categories are the controls and the space; most addresses are ASCII.
	if r < utf8.RuneSelf {
		return r <= ' ' || r == 0x7f
	}
	return unicode.In(r, emailInvisibleCategories...)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// usernameKey and emailKey are the normalized forms that the database's unique indexes hold. Both
// databases compare them byte for byte, so that case-insensitive uniqueness means the same on each.
func usernameKey(s string) string { return strings.ToLower(s) }

// emailKey is NFKC, then full case folding, then NFKC again: close to Unicode's NFKC_Casefold, and
// to what IDNA does to domains. Lower-casing alone would let addresses that differ only in their
// encoding or case be different users: é composed or decomposed, a fullwidth ｊ beside j, the
// Kelvin sign beside k, STRAẞE beside strasse (full folding, as ß upper-cases to SS). The first
// NFKC turns compatibility characters into the plain ones that folding knows; the second
// recomposes what folding decomposed (ǰ folds to j and a combining caron), so that the key of a
// key is itself. The address is still stored as it was sent: only the key is normalized. ASCII
// needs none of it, as its fold is its lower case: the key every ASCII row already holds, at the
// cost of one scan.
func emailKey(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	// A Caser keeps state between calls, so each call needs its own.
	folded := cases.Fold().String(norm.NFKC.String(s))
	return norm.NFKC.String(strings.Map(foldCherokee, folded))
}

// foldCherokee completes x/text's case folding of Cherokee: Unicode folds the small letters to the
// capitals, which came first, but cases.Fold swaps the two instead, so that a letter and its other
// case would keep different keys, and a key's key would not be itself.
func foldCherokee(r rune) rune {
	if 0x13F8 <= r && r <= 0x13FD || 0xAB70 <= r && r <= 0xABBF {
		return unicode.ToUpper(r)
	}
	return r
}
