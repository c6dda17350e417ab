package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"usergraph/models"
)

// answer is what the service made of a request's bearer token, as seen by a handler behind the
// Middleware.
type answer struct {
	UserID  string `json:"user_id"`
	Admin   bool   `json:"admin"`
	Refusal string `json:"refusal"` // why the request is not authenticated, or ""
}

// serveMiddleware serves v.Middleware over real HTTP, in front of a handler that reports the
// caller the request came through as.
func serveMiddleware(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a answer
		if c := models.CallerFrom(r.Context()); c != nil {
			a.UserID, a.Admin = c.UserID, c.Admin
		}
		if _, err := models.Authenticate(r.Context()); err != nil {
			a.Refusal = models.ErrorMessage(err)
		}
		json.NewEncoder(w).Encode(a)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// ask sends srv a request with this bearer token. It returns an error rather than failing the
// test, so that goroutines may call it.
func ask(srv *httptest.Server, token string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := srv.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	var a answer
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		return answer{}, fmt.Errorf("status %s: %w", res.Status, err)
	}
	return a, nil
}

// promptly bounds how long a request may take while a key set fetch is held up: far more than
// verifying a token takes, well short of the JWKSFetchTimeout that a request waiting on the
// fetch would take.
const promptly = JWKSFetchTimeout / 2

// reply is what ask returned.
type reply struct {
	answer answer
	err    error
}

// askInBackground asks at once, and delivers the reply on the channel it returns.
func askInBackground(srv *httptest.Server, token string) <-chan reply {
	replies := make(chan reply, 1)
	go func() {
		a, err := ask(srv, token)
		replies <- reply{a, err}
	}()
	return replies
}

// awaitPromptly returns the answer on replies, failing the test if deadline closes first.
func awaitPromptly(t *testing.T, replies <-chan reply, deadline <-chan struct{}) answer {
	t.Helper()
	select {
	case r := <-replies:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.answer
	case <-deadline:
		t.Fatalf("no answer within %s: the request waits on the key set fetch", promptly)
	}
	return answer{}
}

// askPromptly is ask, failing the test when the answer takes longer than promptly.
func askPromptly(t *testing.T, srv *httptest.Server, token string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), promptly)
	defer cancel()
	return awaitPromptly(t, askInBackground(srv, token), ctx.Done())
}

// logRecorder is a slog.Handler that keeps every record, so that a test can wait for the one
// that says a background fetch is over.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	added   chan struct{} // one slot: records were added since it was last emptied
}

func newLogRecorder() *logRecorder {
	return &logRecorder{added: make(chan struct{}, 1)}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	select {
	case h.added <- struct{}{}:
	default:
	}
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// len is how many records there are so far: pass it to waitFor to wait for a later one.
func (h *logRecorder) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.records)
}

// waitFor returns the first record from the from'th on whose message starts with prefix, waiting
// for it as long as a fetch may take.
func (h *logRecorder) waitFor(t *testing.T, from int, prefix string) slog.Record {
	t.Helper()
	deadline := time.After(2 * JWKSFetchTimeout)
	for {
		h.mu.Lock()
		for _, r := range h.records[min(from, len(h.records)):] {
			if strings.HasPrefix(r.Message, prefix) {
				h.mu.Unlock()
				return r
			}
		}
		h.mu.Unlock()
		select {
		case <-h.added:
		case <-deadline:
			t.Fatalf("no log record %q", prefix)
		}
	}
}

// attr returns the value of the record's attribute with this key, as a string.
func attr(r slog.Record, key string) string {
	var value string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			value = a.Value.String()
			return false
		}
		return true
	})
	return value
}

// forgetLastFetch lets the next unknown kid ask for a fetch at once, as if the last fetch were
// long ago, instead of making the test wait UnknownKeyRefreshInterval.
func forgetLastFetch(v *Verifier) {
	v.jwks.mu.Lock()
	defer v.jwks.mu.Unlock()
	v.jwks.lastFetch = time.Time{}
}
