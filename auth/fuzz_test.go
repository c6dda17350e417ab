package auth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"usergraph/internal/authtest"
	"usergraph/models"
)

// FuzzAuthorizationHeader feeds arbitrary Authorization headers through the middleware. Whatever
// arrives, it must not panic, and the only caller it may ever let through is the one the seed
// tokens were signed for: no amount of mangling forges another identity or the admin role.
// `go test` replays testdata/fuzz/FuzzAuthorizationHeader; `go test -fuzz FuzzAuthorizationHeader
// -run '^$' ./auth` explores further.
func FuzzAuthorizationHeader(f *testing.F) {
	now := time.Now()
	claims := map[string]any{"sub": "7", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	valid := authtest.SignClaims(f, claims)
	for _, seed := range []string{
		"Bearer " + valid,
		"bearer " + valid,
		"Bearer " + authtest.Unsigned(f, map[string]any{"alg": "none"}, claims),
		"Bearer " + authtest.Forge(f, map[string]any{"alg": "HS512"}, claims, authtest.HMAC(sha256.New, secret)),
		"Bearer " + valid + ".",
		"Bearer  " + valid,
		"Basic dXNlcjpwYXNz",
		"Bearer ",
		"",
	} {
		f.Add(seed)
	}
	v, err := NewVerifier(context.Background(), Config{Secret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		var caller *models.Caller
		var authErr error
		h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caller = models.CallerFrom(r.Context())
			_, authErr = models.Authenticate(r.Context())
		}))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Authorization"] = []string{header}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if caller != nil && (caller.UserID != "7" || caller.Admin) {
			t.Fatalf("header %q let through %+v", header, caller)
		}
		if (caller == nil) != (authErr != nil) || (authErr != nil && models.ErrorCode(authErr) != models.Unauthenticated) {
			t.Fatalf("header %q: caller %+v, error %v", header, caller, authErr)
		}
	})
}
