package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
)

// config is the service's configuration, read from the environment.
type config struct {
	Port     string
	Database database.Config
	Auth     auth.Config
	GraphQL  graph.Limits
}

// defaults of the variables the contract gives defaults for.
const (
	defaultPort        = "8080"
	defaultDatabaseURL = "sqlite:usergraph.db"
)

// loadConfig reads the configuration from the environment. Every bad variable is reported, each
// on a line of its own that names it; nothing is half-applied.
func loadConfig(getenv func(string) string) (config, error) {
	var cfg config
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}

	cfg.Port = valueOr(getenv("PORT"), defaultPort)
	if n, err := strconv.Atoi(cfg.Port); err != nil || n < 0 || n > 65535 {
		bad("PORT", "must be a TCP port number from 1 to 65535 (0 picks a free one), not %q", cfg.Port)
	}

	db, err := database.ParseURL(valueOr(getenv("DATABASE_URL"), defaultDatabaseURL))
	if err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	cfg.Database = db

	cfg.Auth = auth.Config{
		Secret:     []byte(getenv("JWT_SECRET")),
		JWKSURL:    getenv("JWKS_URL"),
		Issuer:     getenv("JWT_ISSUER"),
		Audience:   getenv("JWT_AUDIENCE"),
		RolesClaim: valueOr(getenv("JWT_ROLES_CLAIM"), "roles"),
	}
	if n := len(cfg.Auth.Secret); n > 0 && n < auth.MinSecretLength {
		bad("JWT_SECRET", "must be at least %d bytes long, not %d (try: openssl rand -base64 48)", auth.MinSecretLength, n)
	}
	if u := cfg.Auth.JWKSURL; u != "" {
		if parsed, err := url.Parse(u); err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
			bad("JWKS_URL", "must be an http(s) URL, such as https://id.example.com/.well-known/jwks.json, not %q", u)
		}
	}
	if rc := cfg.Auth.RolesClaim; strings.HasPrefix(rc, ".") || strings.HasSuffix(rc, ".") || strings.Contains(rc, "..") {
		bad("JWT_ROLES_CLAIM", "must be a claim name, or a dotted path such as realm_access.roles, not %q", rc)
	}

	cfg.GraphQL = graph.DefaultLimits
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
	maxBody := int(cfg.GraphQL.MaxBodyBytes)
	intVar("GRAPHQL_MAX_BODY_BYTES", 1024, &maxBody)
	cfg.GraphQL.MaxBodyBytes = int64(maxBody)
	intVar("GRAPHQL_MAX_TOKENS", 100, &cfg.GraphQL.Tokens)
	intVar("GRAPHQL_MAX_FIELDS", 10, &cfg.GraphQL.Fields)
	intVar("GRAPHQL_MAX_COMPLEXITY", 10, &cfg.GraphQL.Complexity)
	intVar("GRAPHQL_MAX_BATCH", 0, &cfg.GraphQL.Batch)
	if v := getenv("GRAPHQL_INTROSPECTION"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad("GRAPHQL_INTROSPECTION", "must be true or false, not %q", v)
		}
		cfg.GraphQL.Introspection = on
	}
	return cfg, errors.Join(errs...)
}

func valueOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
