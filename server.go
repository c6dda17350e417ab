// Command usergraph serves a GraphQL API for user accounts, with a REST route for legacy callers.
//
//	usergraph                                     serve (configured by environment variables)
//	usergraph token -sub ID [-roles admin] [-ttl 1h]   print a signed access token
//	usergraph healthcheck                         exit 0 if the server on PORT is ready
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
	"usergraph/idempotency"
	"usergraph/models"
	"usergraph/rest"
	"usergraph/telemetry"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "usergraph: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nusergraph: "))
		os.Exit(1)
	}
}

// shutdownGrace is how long in-flight requests get to finish after SIGTERM or SIGINT.
const shutdownGrace = 10 * time.Second

// ephemeralTokenTTL is the lifetime of the admin token printed when no key is configured; the key
// itself dies with the process.
const ephemeralTokenTTL = 24 * time.Hour

// defaultGCPercent is the garbage collector's setting unless GOGC says otherwise. The service's
// live heap is a few MiB, so at Go's default of 100 it collected every few hundred requests;
// measured with cmd/loadbench, 300 cut the CPU of an updateUser mutation by about 8% (the REST
// route allocates less and did not change), for about 7 MiB more peak RSS (32 MiB in all).
const defaultGCPercent = 300

// keyLockMargin is how much longer than a request may run its Idempotency-Key stays locked to it:
// enough for the clocks of replicas to differ by, so that no replica takes over the key of a
// request that another still runs.
const keyLockMargin = 2 * time.Second

// Expired Idempotency-Keys are purged every purgeInterval, purgeBatch rows per statement, so that
// no statement holds the table long.
const (
	purgeInterval = time.Minute
	purgeBatch    = 1000
)

// run is the whole program: main only calls it, and tests call it as main would.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 {
		switch args[1] {
		case "token":
			return runToken(args[2:], getenv, stdout, stderr)
		case "healthcheck":
			return runHealthcheck(getenv)
		default:
			return fmt.Errorf("unknown command %q: run with no arguments to serve, \"token -h\" or \"healthcheck\"", args[1])
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	logOut := telemetry.NewBufferedWriter(stderr, 100*time.Millisecond)
	defer logOut.Close()
	logger := newLogger(logOut, cfg.LogLevel)

	tracing, err := telemetry.StartTracing(ctx, getenv, stdout, logger)
	if err != nil {
		return err
	}
	defer func() {
		// Deferred before the database is opened, so run after it is closed: every request has
		// ended, and its spans are exported before the process is.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(flushCtx); err != nil {
			logger.Warn("tracing: spans still buffered at shutdown were lost", "err", err)
		}
	}()
	cfg.Database.TracerProvider = tracing.TracerProvider()

	cfg.Auth.Logger = logger
	var devToken string
	if len(cfg.Auth.Secret) == 0 && cfg.Auth.JWKSURL == "" {
		cfg.Auth.Secret = make([]byte, auth.MinSecretLength)
		rand.Read(cfg.Auth.Secret)
		devToken, err = auth.Sign(cfg.Auth, auth.TokenRequest{Subject: "admin", Roles: []string{auth.AdminRole}, TTL: ephemeralTokenTTL})
		if err != nil {
			return err
		}
		logger.Warn("neither JWT_SECRET nor JWKS_URL is set: tokens are signed with an ephemeral key that dies with this process; set one of them for real use")
		fmt.Fprintf(stdout, "No JWT_SECRET or JWKS_URL set: using an ephemeral key. An admin token, valid for %s:\n\n  %s\n\n", ephemeralTokenTTL, devToken)
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return fmt.Errorf("JWKS_URL: %w", err)
	}

	db, err := database.Connect(ctx, cfg.Database, cfg.ConnectTimeout, logger)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()

	keys := idempotency.NewKeeper(database.NewKeyStore(db), cfg.IdempotencyTTL, cfg.RequestTimeout+keyLockMargin)
	go keys.PurgeEvery(ctx, purgeInterval, purgeBatch)

	srv := &http.Server{
		Handler: NewServer(deps{
			Logger:         logger,
			Users:          models.NewUserService(database.NewUserStore(db), models.RequireIfVersion(cfg.RequireIfMatch)),
			Keys:           keys,
			Verifier:       verifier,
			DB:             sqlDB,
			Metrics:        telemetry.NewMetrics(sqlDB),
			GraphQL:        cfg.GraphQL,
			RequestTimeout: cfg.RequestTimeout,
			DevToken:       devToken,
			Tracing:        tracing,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", cfg.Port))
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(stdout, "usergraph is serving on http://localhost:%d/ (Playground at /, GraphQL at /graphql)\n", port)
	if devToken != "" {
		fmt.Fprintf(stdout, "\nTry it: this link opens the Playground with that token in its Headers tab and an example in its editor:\n\n  %s\n\n",
			playgroundLink(fmt.Sprintf("http://localhost:%d", port)))
	}
	logger.Info("serving", "port", port, "database", string(cfg.Database.Dialect), "graphql_limits", cfg.GraphQL.String())

	logOut.Flush() // what start-up had to say, at once
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests", "grace", shutdownGrace.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// newLogger returns the service's logger: JSON lines, each with the request ID of its request.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(telemetry.LogHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// deps are what the service's handlers need. run fills them in once, at start-up.
type deps struct {
	Logger   *slog.Logger
	Users    *models.UserService
	Verifier *auth.Verifier
	// Keys runs the writes that carry an Idempotency-Key once each, on both edges.
	Keys *idempotency.Keeper
	// DB answers readiness probes.
	DB      pinger
	Metrics *telemetry.Metrics
	// GraphQL bounds what one GraphQL request may ask.
	GraphQL graph.Limits
	// RequestTimeout bounds the work of one API request, so that none hangs on a database that
	// has stopped answering.
	RequestTimeout time.Duration
	// DevToken is the admin token printed at start-up when no key is configured, for the
	// Playground to start with in a browser on this machine (see playgroundHandler); empty when a
	// key (JWT_SECRET or JWKS_URL) is configured, so that no page ever holds a real credential.
	DevToken string
	// Tracing traces each request; nil, as when no OTEL_* variable is set, traces none.
	Tracing *telemetry.Tracing
}

// NewServer returns the service's HTTP handler.
func NewServer(d deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return d.Tracing.Handler(telemetry.Middleware(d.Logger, d.Metrics)(mux))
}

// addRoutes is every route the service has. The API's routes get a deadline and the caller.
func addRoutes(mux *http.ServeMux, d deps) {
	api := func(h http.Handler) http.Handler {
		return withDeadline(d.RequestTimeout, d.Verifier.Middleware(h))
	}
	gql := api(graph.NewHandler(d.Users, d.Keys, d.Logger, d.GraphQL))
	mux.Handle("GET /{$}", playgroundHandler(d.DevToken))
	mux.Handle("/graphql", gql)
	mux.Handle("/query", gql)
	mux.Handle("GET /users/{id}", api(rest.GetUser(d.Users, d.Logger)))
	mux.Handle("PUT /users/{id}", api(rest.UpdateUser(d.Users, d.Keys, d.Logger)))
	mux.Handle("PATCH /users/{id}", api(rest.PatchUser(d.Users, d.Keys, d.Logger)))
	mux.Handle("/users/{id}", rest.MethodNotAllowed(http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch))
	mux.Handle("GET /openapi.yaml", rest.OpenAPI())
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.Handle("GET /readyz", handleReadyz(d.DB))
	mux.Handle("GET /metrics", d.Metrics.Handler())
}

// withDeadline gives each request a deadline, timeout from now, after which the database calls it
// makes give up: no request waits on a database that has stopped answering for longer than that.
func withDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// pinger is what readiness needs of the database.
type pinger interface {
	PingContext(ctx context.Context) error
}

var _ pinger = (*sql.DB)(nil)

// handleHealthz answers 200 while the process runs.
func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, "ok")
}

// handleReadyz answers 200 when the database answers, and 503 otherwise.
func handleReadyz(db pinger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			w.Header().Set("Retry-After", "5")
			writeStatus(w, http.StatusServiceUnavailable, "the database is unavailable")
			return
		}
		writeStatus(w, http.StatusOK, "ok")
	}
}

func writeStatus(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"status": text})
}

// runHealthcheck is the healthcheck command, for container health checks in images that have
// no curl: it asks the server on PORT whether it is ready, and fails unless it is.
func runHealthcheck(getenv func(string) string) error {
	port := cmp.Or(getenv("PORT"), "8080")
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz answered %s", resp.Status)
	}
	return nil
}

// runToken is the token command: it prints a token signed with JWT_SECRET.
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: usergraph token -sub ID [-roles admin] [-ttl 1h]\n\nPrints an HS256 access token signed with JWT_SECRET (and JWT_ISSUER, JWT_AUDIENCE, JWT_ROLES_CLAIM if set).")
		fs.PrintDefaults()
	}
	sub := fs.String("sub", "", "the user ID the token speaks for (its sub claim)")
	roles := fs.String("roles", "", `comma-separated roles, such as "admin"`)
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *sub == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("token: -sub is required, and nothing else may follow the flags")
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if len(cfg.Auth.Secret) == 0 {
		return errors.New("JWT_SECRET: must be set to sign tokens (a server without it makes its own key and prints an admin token at start-up)")
	}
	req := auth.TokenRequest{Subject: *sub, TTL: *ttl}
	for r := range strings.SplitSeq(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			req.Roles = append(req.Roles, r)
		}
	}
	token, err := auth.Sign(cfg.Auth, req)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, token)
	return nil
}
