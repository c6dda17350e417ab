// Package jsonbody reads a request body that must be exactly one JSON value, for both edges of the
// service: bounded in size, UTF-8, and with nothing after the value.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// CodeTooLarge is the error code both edges answer ErrTooLarge with.
const CodeTooLarge = "PAYLOAD_TOO_LARGE"

// The ways a body can fail to decode.
var (
	// ErrTooLarge: the body is longer than the limit. It was not read past the limit.
	ErrTooLarge = errors.New("the request body is too large")
	// ErrNotUTF8: the body holds bytes that are not UTF-8, which encoding/json would otherwise
	// turn into U+FFFD without a word, and which would then be stored.
	ErrNotUTF8 = errors.New("the request body is not valid UTF-8")
	// ErrNotJSON: the body is not one JSON value of the expected shape, or something follows it.
	ErrNotJSON = errors.New("the request body is not one JSON value of the expected shape")
	// ErrAborted: the client stopped sending before the body was complete.
	ErrAborted = errors.New("the request body was cut short")
)

// Decode reads r's body, of at most limit bytes, and decodes it into v, numbers as json.Number.
// Its errors are the ones above.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := Read(w, r, limit)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

// Read reads r's body, of at most limit bytes, and checks that it is UTF-8. Errors: ErrTooLarge,
// ErrAborted, ErrNotUTF8.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, ErrTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, ErrTooLarge
		}
		return nil, ErrAborted
	}
	if !utf8.Valid(body) {
		return nil, ErrNotUTF8
	}
	return body, nil
}

// Unmarshal decodes exactly one JSON value from data into v, numbers as json.Number, with nothing
// but white space after it. Errors: ErrNotJSON.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return ErrNotJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrNotJSON
	}
	return nil
}

// IsArray reports whether data holds a JSON array, judging by its first character that is not
// white space.
func IsArray(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '['
}
