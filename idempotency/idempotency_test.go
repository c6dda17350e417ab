package idempotency_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"usergraph/idempotency"
	"usergraph/models"
)

func TestParseKey(t *testing.T) {
	cases := []struct {
		name      string
		values    []string
		wantKey   string
		wantKeyed bool
		wantErr   bool
	}{
		{"NoHeader", nil, "", false, false},
		{"UUID", []string{"5f0c6a3e-4b1d-4c55-9a7e-0d3c1f2a9b10"}, "5f0c6a3e-4b1d-4c55-9a7e-0d3c1f2a9b10", true, false},
		{"PrintableASCIIWithSpaces", []string{`a key "quoted" ~!`}, `a key "quoted" ~!`, true, false},
		{"LongestAllowed", []string{strings.Repeat("k", idempotency.MaxKeyLength)}, strings.Repeat("k", idempotency.MaxKeyLength), true, false},
		{"Empty", []string{""}, "", true, true},
		{"TooLong", []string{strings.Repeat("k", idempotency.MaxKeyLength+1)}, "", true, true},
		{"NotASCII", []string{"clé"}, "", true, true},
		{"ControlCharacter", []string{"a\tb"}, "", true, true},
		{"GivenTwice", []string{"one", "two"}, "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add(idempotency.Header, v)
			}
			key, keyed, err := idempotency.ParseKey(h)
			if key != tc.wantKey || keyed != tc.wantKeyed || (err != nil) != tc.wantErr {
				t.Errorf("got %q, %v, %v; want %q, %v, error %v", key, keyed, err, tc.wantKey, tc.wantKeyed, tc.wantErr)
			}
			if err != nil {
				if code, fields := models.ErrorCode(err), models.ErrorFields(err); code != models.BadUserInput || len(fields) != 1 || fields[0].Field != idempotency.Header {
					t.Errorf("error %v: code %s fields %v, want BAD_USER_INPUT naming %s", err, code, fields, idempotency.Header)
				}
			}
		})
	}
}

// Parts that run into each other are other requests: a body that moved into the path, or an
// If-Match that moved into the body, has another fingerprint.
func TestFingerprintTellsPartsApart(t *testing.T) {
	same := idempotency.Fingerprint([]byte("PUT"), []byte("12"), []byte(`{"a":1}`))
	for _, tc := range []struct {
		name  string
		parts [][]byte
	}{
		{"PartsShifted", [][]byte{[]byte("PUT1"), []byte("2"), []byte(`{"a":1}`)}},
		{"PartMissing", [][]byte{[]byte("PUT"), []byte(`12{"a":1}`)}},
		{"EmptyPartAdded", [][]byte{[]byte("PUT"), []byte("12"), []byte(`{"a":1}`), nil}},
		{"OtherBody", [][]byte{[]byte("PUT"), []byte("12"), []byte(`{"a":2}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(idempotency.Fingerprint(tc.parts...), same) {
				t.Error("same fingerprint as another request")
			}
		})
	}
	if !bytes.Equal(idempotency.Fingerprint([]byte("PUT"), []byte("12"), []byte(`{"a":1}`)), same) {
		t.Error("the same request has another fingerprint")
	}
	if bytes.Equal(idempotency.ID("alice", "k"), idempotency.ID("bob", "k")) || bytes.Equal(idempotency.ID("a", "lice"), idempotency.ID("al", "ice")) {
		t.Error("two callers' keys share an ID")
	}
}

// What is replayed: outcomes the request itself decides. What is not: those a retry can change.
func TestKept(t *testing.T) {
	for code, want := range map[models.Code]bool{
		"":                            true,
		models.BadUserInput:           true,
		models.NotFound:               true,
		models.Conflict:               true,
		models.PreconditionFailed:     true,
		models.PreconditionRequired:   true,
		models.Unauthenticated:        false,
		models.Forbidden:              false,
		models.Unavailable:            false,
		models.Internal:               false,
		models.IdempotencyKeyInUse:    false,
		models.IdempotencyKeyMismatch: false,
	} {
		if got := idempotency.Kept(code); got != want {
			t.Errorf("Kept(%q) = %v, want %v", code, got, want)
		}
	}
}
