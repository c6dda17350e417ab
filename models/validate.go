package models

import (
	"fmt"
	"net/mail"
	"slices"
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

// Validate checks the update as Update does, without touching the store. Codes: BAD_USER_INPUT,
// listing every field at fault.
func (upd UserUpdate) Validate() error {
	problems := slices.Clone(upd.Rejected)
	for _, f := range upd.Nulls {
		problems = append(problems, FieldError{f, "must not be null: leave the field out to keep its value"})
	}
	if upd.Username != nil {
		if msg := validateUsername(*upd.Username); msg != "" {
			problems = append(problems, FieldError{"username", msg})
		}
	}
	if upd.Email != nil {
		if msg := validateEmail(*upd.Email); msg != "" {
			problems = append(problems, FieldError{"email", msg})
		}
	}
	if problems != nil {
		return fieldsError(BadUserInput, problems)
	}
	if upd.Username == nil && upd.Email == nil {
		return fieldsError(BadUserInput, []FieldError{{"input", "must set at least one of username and email"}})
	}
	return nil
}

// validate checks a new user as Create does. Codes: BAD_USER_INPUT, listing every field at fault.
func (in UserCreate) validate() error {
	var problems []FieldError
	if msg := validateUsername(in.Username); msg != "" {
		problems = append(problems, FieldError{"username", msg})
	}
	if msg := validateEmail(in.Email); msg != "" {
		problems = append(problems, FieldError{"email", msg})
	}
	if problems != nil {
		return fieldsError(BadUserInput, problems)
	}
	return nil
}

// validatePage checks the arguments of List, and returns the page size they ask for and the ID of
// the user that the page starts after (0 for the first page). Codes: BAD_USER_INPUT, listing every
// argument at fault.
func validatePage(first *int, after *string) (limit int, afterID int64, err error) {
	var problems []FieldError
	limit = DefaultPageSize
	if first != nil {
		limit = *first
		if limit < 1 || limit > MaxPageSize {
			problems = append(problems, FieldError{"first", fmt.Sprintf("must be from 1 to %d", MaxPageSize)})
		}
	}
	if after != nil {
		var ok bool
		if afterID, ok = parseCursor(*after); !ok {
			problems = append(problems, FieldError{"after", "must be a cursor from a previous page"})
		}
	}
	if problems != nil {
		return 0, 0, fieldsError(BadUserInput, problems)
	}
	return limit, afterID, nil
}

// validateUsername returns what is wrong with a username, or "" if nothing is. Nothing is trimmed:
// surrounding spaces are an error, as any other character outside the allowed set.
func validateUsername(s string) string {
	if n := utf8.RuneCountInString(s); n < UsernameMinLength || n > UsernameMaxLength {
		return fmt.Sprintf("must be %d to %d characters long", UsernameMinLength, UsernameMaxLength)
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
		return fmt.Sprintf("must be at most %d characters long", EmailMaxLength)
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
		return fmt.Sprintf("must have at most %d characters before the @", EmailLocalMaxLength)
	}
	if !strings.Contains(domain, ".") {
		return "must have a domain with a dot, such as example.com"
	}
	// A store holds keys of at most EmailMaxLength characters, and normalizing can lengthen an
	// address (ß folds to ss, a ligature expands to its letters): one whose key does not fit is
	// refused here, saying why, rather than by the store. An ASCII key is as long as its address.
	if !isASCII(s) && utf8.RuneCountInString(emailKey(s)) > EmailMaxLength {
		return fmt.Sprintf("must be at most %d characters long once normalized, where some characters such as ligatures count as several", EmailMaxLength)
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

// keysOf returns the keys of a username and an email, nil for one that is nil.
func keysOf(username, email *string) Keys {
	var keys Keys
	if username != nil {
		key := usernameKey(*username)
		keys.Username = &key
	}
	if email != nil {
		key := emailKey(*email)
		keys.Email = &key
	}
	return keys
}

// usernameKey and emailKey are the normalized forms that uniqueness compares (see Keys). A store
// compares them byte for byte, so that case-insensitive uniqueness means the same on every
// database.
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
