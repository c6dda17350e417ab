package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
	"usergraph/internal/dbtest"
	"usergraph/models"
	"usergraph/telemetry"
)

// BenchmarkUpdateUser measures one update three ways on each database: PUT /users/{id} through the
// whole handler stack (token check, routing, decoding, the operation, encoding), the updateUser
// mutation through the same stack, and the bare operation. Run with
//
//	go test -run '^$' -bench UpdateUser -benchmem .
//
// The ratios between the three are what the service adds on top of the database.
func BenchmarkUpdateUser(b *testing.B) {
	urls := map[string]string{"sqlite": dbtest.SQLiteURL(b)}
	if dbtest.MySQLConfigured(b) {
		urls["mysql"] = dbtest.MySQLURL(b)
	}
	for _, name := range []string{"sqlite", "mysql"} {
		url, ok := urls[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) { benchmarkUpdateUser(b, url) })
	}
}

func benchmarkUpdateUser(b *testing.B, databaseURL string) {
	db := dbtest.Open(b, databaseURL)
	sqlDB, _ := db.DB()
	verifier, _ := auth.NewVerifier(context.Background(), testAuth)
	users := models.NewUserService(database.NewUserStore(db))
	handler := NewServer(deps{
		Logger:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Users:          users,
		Verifier:       verifier,
		DB:             sqlDB,
		Metrics:        telemetry.NewMetrics(sqlDB),
		GraphQL:        graph.DefaultLimits,
		RequestTimeout: 10 * time.Second,
	})

	id, next := benchmarkEdges(b, handler, users)
	b.Run("Domain", func(b *testing.B) {
		caller := models.ContextWithCaller(context.Background(), &models.Caller{UserID: id})
		for b.Loop() {
			name := next()
			if _, err := users.Update(caller, id, models.UserUpdate{Username: &name}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchmarkEdges creates a user through users, and measures renaming it through each edge of
// handler, with the process's CPU per rename beside the time. It returns the user's ID, and what
// gives each rename a name no other has taken.
func benchmarkEdges(b *testing.B, handler http.Handler, users *models.UserService) (id string, next func() string) {
	admin := models.ContextWithCaller(context.Background(), &models.Caller{UserID: "admin", Admin: true})
	u, err := users.Create(admin, models.UserCreate{Username: "benchmarked", Email: "benchmarked@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	id = models.IDString(u.ID)
	bearer := "Bearer " + token(b, id)
	n := 0
	next = func() string { n++; return fmt.Sprintf("bench-%d", n) }

	b.Run("REST", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPut, "/users/"+id, strings.NewReader(`{"username": "`+next()+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", bearer)
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("GraphQL", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			body := `{"query": "mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id username email } }",
				"variables": {"id": "` + id + `", "in": {"username": "` + next() + `"}}}`
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", bearer)
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"errors"`) {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
	return id, next
}

// reportCPU starts measuring the CPU time of the process, and returns what reports it per
// operation: unlike ns/op, it leaves out the time spent waiting on the database, and takes in
// work done in the background, such as a trace exporter's.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}
