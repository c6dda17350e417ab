package graph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"usergraph/models"
)

// In a traced request, each operation is a span under the request's, named by its type, with its
// type and name and never its document; its errors are recorded by code, and only the service's
// own failures mark it as failed. A request that is not traced, or whose document never becomes
// an operation, gets no span.
func TestOperationSpans(t *testing.T) {
	type want struct {
		name      string // "" for no operation span
		attrs     map[string]string
		errorType string
		events    int
		status    codes.Code
	}
	cases := []struct {
		name     string
		query    string
		untraced bool
		closedDB bool
		want     want
	}{
		{
			"QueryIsASpanNamedByItsType",
			`query Me { me { id } }`, false, false,
			want{name: "query", attrs: map[string]string{"graphql.operation.type": "query", "graphql.operation.name": "Me"}},
		},
		{
			"AnonymousOperationHasNoName",
			`{ me { id } }`, false, false,
			want{name: "query", attrs: map[string]string{"graphql.operation.type": "query"}},
		},
		{
			"RefusalIsRecordedByItsCodeButIsNoFailure",
			`mutation Rename { updateUser(id: "999", input: {username: "someone.else"}) { id } }`, false, false,
			want{name: "mutation", attrs: map[string]string{"graphql.operation.type": "mutation", "graphql.operation.name": "Rename"}, errorType: "FORBIDDEN", events: 1, status: codes.Unset},
		},
		{
			"InternalErrorMarksTheSpanAsFailed",
			`{ me { id } }`, false, true,
			want{name: "query", attrs: map[string]string{"graphql.operation.type": "query"}, errorType: "INTERNAL_SERVER_ERROR", events: 1, status: codes.Error},
		},
		{"InvalidDocumentIsNoOperation", `{ nosuchfield }`, false, false, want{}},
		{"UntracedRequestHasNoSpan", `{ me { id } }`, true, false, want{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openWithAccount(t)
			if tc.closedDB {
				sqlDB, _ := db.DB()
				sqlDB.Close()
			}
			h := newTestHandler(db, DefaultLimits)
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			ctx := models.ContextWithCaller(context.Background(), &models.Caller{UserID: "1"})
			var parent trace.Span
			if !tc.untraced {
				ctx, parent = tp.Tracer("test").Start(ctx, "POST /graphql")
			}
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(mustJSON(map[string]any{"query": tc.query})))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.WithContext(ctx))
			if parent != nil {
				parent.End()
			}

			var ops []sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				if s.Name() != "POST /graphql" {
					ops = append(ops, s)
				}
			}
			if tc.want.name == "" {
				if len(ops) != 0 {
					t.Fatalf("got %d operation spans, want none", len(ops))
				}
				return
			}
			if len(ops) != 1 {
				t.Fatalf("got %d operation spans, want 1 (response %s)", len(ops), w.Body)
			}
			got := ops[0]
			if got.Name() != tc.want.name || got.SpanKind() != trace.SpanKindInternal {
				t.Errorf("span: got %q %s, want %q internal", got.Name(), got.SpanKind(), tc.want.name)
			}
			if got.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("parent: got %s, want the request's span", got.Parent().SpanID())
			}
			attrs := map[string]string{}
			for _, kv := range got.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			for k, v := range tc.want.attrs {
				if attrs[k] != v {
					t.Errorf("%s: got %q, want %q", k, attrs[k], v)
				}
			}
			if _, ok := attrs["graphql.operation.name"]; ok && tc.want.attrs["graphql.operation.name"] == "" {
				t.Errorf("graphql.operation.name: got %q, want none", attrs["graphql.operation.name"])
			}
			if _, ok := attrs["graphql.document"]; ok {
				t.Error("the span holds the document")
			}
			if attrs["error.type"] != tc.want.errorType {
				t.Errorf("error.type: got %q, want %q", attrs["error.type"], tc.want.errorType)
			}
			if n := len(got.Events()); n != tc.want.events {
				t.Errorf("events: got %d, want %d", n, tc.want.events)
			}
			for _, e := range got.Events() {
				if e.Name != "graphql.error" || !hasAttr(e.Attributes, "error.type", tc.want.errorType) || len(e.Attributes) != 1 {
					t.Errorf("event %q %v: want graphql.error with error.type %s alone", e.Name, e.Attributes, tc.want.errorType)
				}
			}
			if got.Status().Code != tc.want.status {
				t.Errorf("status: got %s, want %s", got.Status().Code, tc.want.status)
			}
		})
	}
}

func hasAttr(kvs []attribute.KeyValue, key, value string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == key && kv.Value.String() == value {
			return true
		}
	}
	return false
}
