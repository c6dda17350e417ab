package models

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// User is an account. Its username and email are each unique among users, compared by their
// keys: case-insensitively, and for emails whatever the Unicode encoding (see Keys).
type User struct {
	ID       int64
	Username string
	Email    string
	// Version starts at 1 and goes up by one with every update; it is what an ETag and an
	// expected version (If-Match) refer to.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserCreate holds the fields of a new user. Both are required.
type UserCreate struct {
	Username string
	Email    string
}

// UserUpdate holds the changes to a user. A nil field is left as it is.
type UserUpdate struct {
	Username *string
	Email    *string

	// Nulls names the fields that the request set to an explicit null. The edges report them here
	// rather than refusing them themselves, so that the rule and its message live in one place:
	// every user has a username and an email, and null is not a way to keep one unchanged.
	Nulls []string

	// Rejected lists what the edge found wrong with fields while decoding the request, such as an
	// unknown field or a value of the wrong type. The update reports these together with its own
	// findings, after authentication and authorization, in one BAD_USER_INPUT error.
	Rejected []FieldError

	// IfVersion, when set, makes the update apply only if the user's version is still this one.
	// A service that requires it (RequireIfVersion) refuses an update without it.
	IfVersion *int64
}

// UserPage is one page of users, in ID order.
type UserPage struct {
	Users []*User
	// HasNext reports whether more users follow this page.
	HasNext bool
}

// Cursor returns the opaque cursor that points at u in a listing: pass it as after to list the
// users that follow u.
func (u *User) Cursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(u.ID, 10)))
}

const cursorPrefix = "user:"

// parseCursor returns the ID a cursor points at.
func parseCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	id, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, false
	}
	return parseID(id)
}

// IDString renders a user ID the way the API shows it: a decimal integer.
func IDString(id int64) string { return strconv.FormatInt(id, 10) }

// parseID returns the user ID that s names. Only the canonical form counts: a positive decimal
// integer without sign, leading zeros or spaces. Anything else names no user.
func parseID(s string) (int64, bool) {
	if s == "" || s[0] == '0' || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}
