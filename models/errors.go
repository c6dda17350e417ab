package models

import (
	"errors"
	"fmt"
)

// Code classifies an Error. Each edge of the service (GraphQL, REST) translates codes into its own
// protocol in one table; no edge ever looks at an error's message to decide what it means.
type Code string

// The codes an operation may return. Their names are the GraphQL extensions.code values.
const (
	// Unauthenticated: no bearer token, or one that is invalid or expired.
	Unauthenticated Code = "UNAUTHENTICATED"
	// Forbidden: a valid token, but the caller may not do this to this user.
	Forbidden Code = "FORBIDDEN"
	// BadUserInput: the input breaks a validation rule; Error.Fields says which.
	BadUserInput Code = "BAD_USER_INPUT"
	// NotFound: no user matches the ID.
	NotFound Code = "NOT_FOUND"
	// Conflict: the username or email belongs to another user; Error.Fields says which.
	Conflict Code = "CONFLICT"
	// PreconditionFailed: the user's version is not the one the caller expected.
	PreconditionFailed Code = "PRECONDITION_FAILED"
	// PreconditionRequired: the service requires every update to name the version it applies to
	// (see RequireIfVersion), and this one names none.
	PreconditionRequired Code = "PRECONDITION_REQUIRED"
	// IdempotencyKeyMismatch: an Idempotency-Key that the caller used before, for another request.
	IdempotencyKeyMismatch Code = "IDEMPOTENCY_KEY_MISMATCH"
	// IdempotencyKeyInUse: a request under the same Idempotency-Key is still running.
	IdempotencyKeyInUse Code = "IDEMPOTENCY_KEY_IN_USE"
	// Unavailable: the database cannot be reached or is too busy; retrying may succeed.
	Unavailable Code = "SERVICE_UNAVAILABLE"
	// Internal: anything else. Its message never reveals internals.
	Internal Code = "INTERNAL_SERVER_ERROR"
)

// Error is the error every operation returns: a code for programs, a message for people, and for
// BAD_USER_INPUT and CONFLICT the fields at fault, in the order of the input.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError

	// cause is the failure behind the error, for the server's logs only.
	cause error
}

// FieldError says what is wrong with one input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements the error interface. Its text is for logs; clients are shown Message.
func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the failure behind the error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// UnavailableError returns the SERVICE_UNAVAILABLE error of a UserStore whose database could not
// be reached or was too busy: a failure that retrying shortly may cure. cause is kept for the
// server's logs; clients see only the message.
func UnavailableError(cause error) *Error {
	return &Error{Code: Unavailable, Message: "the database is unavailable: try again shortly", cause: cause}
}

// fieldsError returns an error with the given code that lists the fields at fault; its message
// is the first field's, which is what a client that shows one message should show.
func fieldsError(code Code, fields []FieldError) *Error {
	msg := fields[0].Field + ": " + fields[0].Message
	if len(fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(fields)-1)
	}
	return &Error{Code: code, Message: msg, Fields: fields}
}

// ErrorCode returns the code of err: its own if it is (or wraps) an *Error, Internal
// for any other error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of err that is safe to show a client: its own if it is (or wraps)
// an *Error, and a generic one for any other error, whose text may name internals.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the fields at fault in err, or nil.
func ErrorFields(err error) []FieldError {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Fields
	}
	return nil
}
