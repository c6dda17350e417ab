package rest_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
	"usergraph/rest/restclient"
)

// clientFor is the generated client of the REST routes at url, sending bearer (none if empty).
func clientFor(t testing.TB, url, bearer string) *restclient.ClientWithResponses {
	t.Helper()
	c, err := restclient.NewClientWithResponses(url, restclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A client generated from the OpenAPI document, as a user of the API would generate one, drives
// the real server: every answer arrives in the type the document gives it, headers included.
func TestGeneratedClient(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		ctx := context.Background()
		u, token := s.newUser(t)
		c := clientFor(t, s.URL, token)

		got, err := c.GetUserWithResponse(ctx, u.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.JSON200 == nil || got.JSON200.Username != u.Username || got.Headers200 == nil || got.Headers200.ETag == "" {
			t.Fatalf("GET: %d %s, want the user and its ETag", got.StatusCode(), got.Body)
		}
		etag := got.Headers200.ETag

		t.Run("NotModified", func(t *testing.T) {
			r, err := c.GetUserWithResponse(ctx, u.ID, &restclient.GetUserParams{IfNoneMatch: &etag})
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode() != http.StatusNotModified || r.Headers304 == nil || r.Headers304.ETag != etag || len(r.Body) != 0 {
				t.Errorf("got %d %q, want 304 with ETag %s and no body", r.StatusCode(), r.Body, etag)
			}
		})

		name := apitest.Uniq("generated")
		key := apitest.Uniq("key")
		params := &restclient.UpdateUserParams{IfMatch: &etag, IdempotencyKey: &key}
		first, err := c.UpdateUserWithResponse(ctx, u.ID, params, restclient.UserUpdate{Username: &name})
		if err != nil {
			t.Fatal(err)
		}
		if first.JSON200 == nil || first.JSON200.Username != name || first.Headers200.IdempotentReplayed != nil {
			t.Fatalf("PUT: %d %s, want the renamed user, no replay", first.StatusCode(), first.Body)
		}

		t.Run("RetryIsReplayed", func(t *testing.T) {
			// A client that timed out sends the same request again.
			r, err := c.UpdateUserWithResponse(ctx, u.ID, params, restclient.UserUpdate{Username: &name})
			if err != nil {
				t.Fatal(err)
			}
			if r.JSON200 == nil || !bytes.Equal(r.Body, first.Body) || r.Headers200.IdempotentReplayed == nil || *r.Headers200.IdempotentReplayed != "true" || r.Headers200.ETag != first.Headers200.ETag {
				t.Errorf("retry: %d %s (headers %+v), want a replay of %s", r.StatusCode(), r.Body, r.Headers200, first.Body)
			}
			if got := dbtest.Stored(t, s.db, u.ID).Version; got != 2 {
				t.Errorf("version %d, want 2: the retry applied nothing", got)
			}
		})

		t.Run("KeyReusedIsUnprocessable", func(t *testing.T) {
			other := apitest.Uniq("other")
			r, err := c.UpdateUserWithResponse(ctx, u.ID, params, restclient.UserUpdate{Username: &other})
			if err != nil {
				t.Fatal(err)
			}
			if r.ApplicationproblemJSON422 == nil || r.ApplicationproblemJSON422.Code != restclient.IDEMPOTENCYKEYMISMATCH {
				t.Errorf("got %d %s, want 422 IDEMPOTENCY_KEY_MISMATCH", r.StatusCode(), r.Body)
			}
		})

		t.Run("StaleETagIsPreconditionFailed", func(t *testing.T) {
			other := apitest.Uniq("stale")
			r, err := c.UpdateUserWithResponse(ctx, u.ID, &restclient.UpdateUserParams{IfMatch: &etag}, restclient.UserUpdate{Username: &other})
			if err != nil {
				t.Fatal(err)
			}
			if r.ApplicationproblemJSON412 == nil || r.ApplicationproblemJSON412.Code != restclient.PRECONDITIONFAILED {
				t.Errorf("got %d %s, want 412 PRECONDITION_FAILED", r.StatusCode(), r.Body)
			}
		})

		t.Run("MergePatch", func(t *testing.T) {
			email := apitest.Uniq("patched") + "@example.com"
			r, err := c.PatchUserWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, u.ID, nil, restclient.UserUpdate{Email: &email})
			if err != nil {
				t.Fatal(err)
			}
			if r.JSON200 == nil || r.JSON200.Email != email || r.JSON200.Username != name {
				t.Errorf("got %d %s, want the user with email %s", r.StatusCode(), r.Body, email)
			}
		})

		t.Run("InvalidInputNamesTheField", func(t *testing.T) {
			bad := "x"
			r, err := c.UpdateUserWithResponse(ctx, u.ID, nil, restclient.UserUpdate{Username: &bad})
			if err != nil {
				t.Fatal(err)
			}
			if p := r.ApplicationproblemJSON400; p == nil || p.Code != restclient.BADUSERINPUT || p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Field != "username" {
				t.Errorf("got %d %s, want 400 BAD_USER_INPUT naming username", r.StatusCode(), r.Body)
			}
		})

		t.Run("WithoutTokenUnauthorized", func(t *testing.T) {
			r, err := clientFor(t, s.URL, "").UpdateUserWithResponse(ctx, u.ID, nil, restclient.UserUpdate{Username: &name})
			if err != nil {
				t.Fatal(err)
			}
			if r.ApplicationproblemJSON401 == nil || r.ApplicationproblemJSON401.Code != restclient.UNAUTHENTICATED || r.Headers401 == nil || r.Headers401.WWWAuthenticate == "" {
				t.Errorf("got %d %s, want 401 UNAUTHENTICATED with WWW-Authenticate", r.StatusCode(), r.Body)
			}
		})

		t.Run("AbsentUserNotFound", func(t *testing.T) {
			r, err := clientFor(t, s.URL, s.AdminToken).GetUserWithResponse(ctx, "999999", nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.ApplicationproblemJSON404 == nil || r.ApplicationproblemJSON404.Code != restclient.NOTFOUND {
				t.Errorf("got %d %s, want 404 NOT_FOUND", r.StatusCode(), r.Body)
			}
		})
	})
}
