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
	if r.ContentLength > limit {
		return ErrTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return ErrTooLarge
		}
		return ErrAborted
	}
	if !utf8.Valid(body) {
		return ErrNotUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return ErrNotJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrNotJSON
	}
	return nil
}
