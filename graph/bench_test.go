package graph

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"usergraph/database"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

// BenchmarkUpdateUser executes the updateUser mutation through the GraphQL handler on an
// in-memory SQLite database: parsing (cached after the first), validation, execution, the
// operation and the response, without HTTP or a token check.
func BenchmarkUpdateUser(b *testing.B) {
	users := models.NewUserService(database.NewUserStore(dbtest.Open(b, "sqlite::memory:")))
	admin := models.ContextWithCaller(context.Background(), &models.Caller{UserID: "admin", Admin: true})
	u, err := users.Create(admin, models.UserCreate{Username: "benchmarked", Email: "benchmarked@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(users, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)), DefaultLimits)
	caller := models.ContextWithCaller(context.Background(), &models.Caller{UserID: models.IDString(u.ID)})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		body := fmt.Sprintf(`{"query": "mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id username email } }", "variables": {"id": "%d", "in": {"username": "bench-%d"}}}`, u.ID, n)
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body)).WithContext(caller)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || strings.Contains(rec.Body.String(), `"errors"`) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
