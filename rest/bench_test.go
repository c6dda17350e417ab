package rest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkDecodeUpdate is what the REST route does to a PUT body before the database: decoding it
// and validating the update.
func BenchmarkDecodeUpdate(b *testing.B) {
	const body = `{"username": "updatedUser", "email": "updated-user@example.com"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPut, "/users/12345", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		_, body, bad := readBody(httptest.NewRecorder(), req, putBody)
		if bad != nil {
			b.Fatal(bad.detail)
		}
		upd, bad := parseUpdate(body)
		if bad != nil {
			b.Fatal(bad.detail)
		}
		if err := upd.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
