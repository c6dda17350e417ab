package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
)

// config is the service's configuration, read from the environment.
type config struct {
	Port     string
	Database database.Config
	// ConnectTimeout is how long start-up keeps retrying a database that does not answer.
	ConnectTimeout time.Duration
	// RequestTimeout bounds the work one API request may make the database do.
	RequestTimeout time.Duration
	Auth           auth.Config
	GraphQL        graph.Limits
	// RequireIfMatch makes every update name the version it applies to (models.RequireIfVersion).
	RequireIfMatch bool
	// IdempotencyTTL is how long the outcome of a request with an Idempotency-Key is kept.
	IdempotencyTTL time.Duration
	LogLevel       slog.Level
}

// variable is an environment variable the service reads.
type variable struct {
	Name, Default, Meaning string
}

// variables is every environment variable the service reads: loadConfig reads the service's own,
// telemetry.StartTracing the OTEL_* ones (and the other standard OTEL_* variables besides), and
// tests hold the README and docker-compose.yml to this list.
var variables = []variable{
	{"PORT", "8080", "TCP port, on all interfaces"},
	{"DATABASE_URL", "sqlite:usergraph.db", "sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB?params"},
	{"DB_MAX_OPEN_CONNS", strconv.Itoa(database.DefaultMaxOpenConns), "MySQL connections at most, per instance"},
	{"DB_MAX_IDLE_CONNS", "DB_MAX_OPEN_CONNS", "MySQL connections kept open when idle"},
	{"DB_CONN_MAX_LIFETIME", "30m", "how long a MySQL connection is used before it is replaced"},
	{"DB_CONNECT_TIMEOUT", "30s", "how long start-up keeps retrying a database that does not answer"},
	{"REQUEST_TIMEOUT", "10s", "the most time one API request may take"},
	{"JWT_SECRET", "", "HS256 key, at least 32 bytes"},
	{"JWKS_URL", "", "an identity provider's JWKS, for RS256, ES256 and EdDSA tokens"},
	{"JWT_ISSUER", "", "the iss tokens must carry"},
	{"JWT_AUDIENCE", "", "the aud tokens must carry"},
	{"JWT_ROLES_CLAIM", "roles", "the claim holding the caller's roles"},
	{"GRAPHQL_MAX_BODY_BYTES", "262144", "largest GraphQL POST body"},
	{"GRAPHQL_MAX_TOKENS", "5000", "lexical tokens the parser reads"},
	{"GRAPHQL_MAX_FIELDS", "1000", "fields a document may select"},
	{"GRAPHQL_MAX_COMPLEXITY", "5000", "a document's cost"},
	{"GRAPHQL_MAX_BATCH", "0", "operations one POST may carry as a JSON array"},
	{"GRAPHQL_INTROSPECTION", "true", "whether introspection and suggestions are on"},
	{"REQUIRE_IF_MATCH", "false", "whether an update without If-Match or expectedVersion is refused"},
	{"IDEMPOTENCY_TTL", "24h", "how long an Idempotency-Key's outcome is kept"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	// The OpenTelemetry variables that a deployment sets most; telemetry.StartTracing reads them
	// and the rest of the standard OTEL_* ones.
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "the OTLP collector's address; tracing is off without it or OTEL_TRACES_EXPORTER"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf, http/json or grpc"},
	{"OTEL_EXPORTER_OTLP_HEADERS", "", "headers for the collector, such as an API key"},
	{"OTEL_TRACES_EXPORTER", "", "otlp, console or none"},
	{"OTEL_SERVICE_NAME", "usergraph", "the service.name of the traces"},
	{"OTEL_TRACES_SAMPLER", "parentbased_always_on", "which requests are traced"},
	{"OTEL_TRACES_SAMPLER_ARG", "1", "the ratio of the ratio samplers"},
}

// loadConfig reads the configuration from the environment. Every bad variable is reported, each
// on a line of its own that names it; nothing is half-applied.
func loadConfig(getenv func(string) string) (config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		for _, v := range variables {
			if v.Name == name {
				return v.Default
			}
		}
		panic("unknown variable " + name)
	}
	intVar := func(name string, min int, dst *int) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			bad(name, "must be a whole number of at least %d, not %q", min, v)
			return
		}
		*dst = n
	}
	durationVar := func(name string, dst *time.Duration) {
		v := get(name)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(name, "must be a positive duration such as 30s or 5m, not %q", v)
			return
		}
		*dst = d
	}

	cfg := config{Port: get("PORT")}
	if n, err := strconv.Atoi(cfg.Port); err != nil || n < 0 || n > 65535 {
		bad("PORT", "must be a TCP port number from 1 to 65535 (0 picks a free one), not %q", cfg.Port)
	}

	db, err := database.ParseURL(get("DATABASE_URL"))
	if err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	cfg.Database = db
	cfg.Database.MaxOpenConns = database.DefaultMaxOpenConns
	intVar("DB_MAX_OPEN_CONNS", 1, &cfg.Database.MaxOpenConns)
	cfg.Database.MaxIdleConns = cfg.Database.MaxOpenConns
	intVar("DB_MAX_IDLE_CONNS", 0, &cfg.Database.MaxIdleConns)
	durationVar("DB_CONN_MAX_LIFETIME", &cfg.Database.ConnMaxLifetime)
	durationVar("DB_CONNECT_TIMEOUT", &cfg.ConnectTimeout)
	durationVar("REQUEST_TIMEOUT", &cfg.RequestTimeout)
	durationVar("IDEMPOTENCY_TTL", &cfg.IdempotencyTTL)

	cfg.Auth = auth.Config{
		Secret:     []byte(getenv("JWT_SECRET")),
		JWKSURL:    getenv("JWKS_URL"),
		Issuer:     getenv("JWT_ISSUER"),
		Audience:   getenv("JWT_AUDIENCE"),
		RolesClaim: get("JWT_ROLES_CLAIM"),
	}
	if n := len(cfg.Auth.Secret); n > 0 && n < auth.MinSecretLength {
		bad("JWT_SECRET", "must be at least %d bytes long, not %d (try: openssl rand -base64 48)", auth.MinSecretLength, n)
	}
	if u := cfg.Auth.JWKSURL; u != "" {
		if err := auth.CheckJWKSURL(u); err != nil {
			bad("JWKS_URL", "%v", err)
		}
	}
	if rc := cfg.Auth.RolesClaim; !validRolesClaim(rc) {
		bad("JWT_ROLES_CLAIM", "must be a claim name, a dotted path such as realm_access.roles, or a namespaced claim's URL such as https://example.com/roles, not %q", rc)
	}

	cfg.GraphQL = graph.DefaultLimits
	maxBody := int(cfg.GraphQL.MaxBodyBytes)
	intVar("GRAPHQL_MAX_BODY_BYTES", 1024, &maxBody)
	cfg.GraphQL.MaxBodyBytes = int64(maxBody)
	intVar("GRAPHQL_MAX_TOKENS", 100, &cfg.GraphQL.Tokens)
	intVar("GRAPHQL_MAX_FIELDS", 10, &cfg.GraphQL.Fields)
	intVar("GRAPHQL_MAX_COMPLEXITY", 10, &cfg.GraphQL.Complexity)
	intVar("GRAPHQL_MAX_BATCH", 0, &cfg.GraphQL.Batch)
	if v := get("GRAPHQL_INTROSPECTION"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad("GRAPHQL_INTROSPECTION", "must be true or false, not %q", v)
		}
		cfg.GraphQL.Introspection = on
	}

	requireIfMatch := get("REQUIRE_IF_MATCH")
	if on, err := strconv.ParseBool(requireIfMatch); err != nil {
		bad("REQUIRE_IF_MATCH", "must be true or false, not %q", requireIfMatch)
	} else {
		cfg.RequireIfMatch = on
	}

	if err := cfg.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL"))); err != nil {
		bad("LOG_LEVEL", "must be debug, info, warn or error, not %q", getenv("LOG_LEVEL"))
	}
	return cfg, errors.Join(errs...)
}

// validRolesClaim reports whether name can name the roles claim: a URL, as namespaced claims are
// named (its dots are part of the name), or a name whose dots separate the steps of a path into
// nested claims, none of them empty.
func validRolesClaim(name string) bool {
	if strings.Contains(name, "://") {
		u, err := url.Parse(name)
		return err == nil && u.Scheme != "" && u.Host != ""
	}
	return !slices.Contains(strings.Split(name, "."), "")
}
