package models

import (
	"net/mail"
	"strings"
	"unicode/utf8"
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
	return ""
}

// usernameKey and emailKey are the normalized forms that the database's unique indexes hold. Both
// databases compare them byte for byte, so that case-insensitive uniqueness means the same on each.
func usernameKey(s string) string { return strings.ToLower(s) }
func emailKey(s string) string    { return strings.ToLower(s) }
