package graph

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"usergraph/database"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

// newTestHandler returns the GraphQL handler with the given limits on a new SQLite database,
// opened as the service opens its own, and an account on it with ID 1.
func newTestHandler(t testing.TB, limits Limits) http.Handler {
	t.Helper()
	users := models.NewUserService(database.NewUserStore(dbtest.Open(t, dbtest.SQLiteURL(t))))
	if _, err := users.Create(asAdmin(context.Background()), models.UserCreate{Username: "fuzzed", Email: "fuzzed@example.com"}); err != nil {
		t.Fatal(err)
	}
	return NewHandler(users, slog.New(slog.NewTextHandler(io.Discard, nil)), limits)
}

// asAdmin is ctx with an admin calling, who may run every operation.
func asAdmin(ctx context.Context) context.Context {
	return models.ContextWithCaller(ctx, &models.Caller{UserID: "admin", Admin: true})
}
