package apitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"usergraph/rest"
)

// recorder is a testing.TB that keeps what a check reports instead of failing the test.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

// Every REST test relies on CheckOpenAPI to hold the document to the code: it must report a
// response the document does not describe, and pass one it does.
func TestCheckOpenAPIReportsDrift(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		wantDrift bool
	}{
		{"DocumentedUser", 200, `{"id": "1", "username": "alice", "email": "alice@example.com"}`, false},
		{"UserMissingAField", 200, `{"id": "1", "username": "alice"}`, true},
		{"UndocumentedStatus", 418, `{}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/openapi.yaml" {
					w.Write(rest.OpenAPIDocument())
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("ETag", `"1"`)
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			c := &Client{URL: srv.URL}
			c.REST(rec, http.MethodGet, "/users/1", http.Header{"Authorization": {"Bearer x"}}, "")
			if got := len(rec.errors) > 0; got != tc.wantDrift {
				t.Errorf("drift reported: %v, want %v (%v)", got, tc.wantDrift, rec.errors)
			}
		})
	}
}
