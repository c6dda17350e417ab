package main

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"usergraph/graph"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// The variables table is what the README and the compose file are held to; the defaults the code
// applies must be the ones it states. Setting every variable to its stated default must change
// nothing.
func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	empty, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	stated := map[string]string{}
	for _, v := range variables {
		if v.Default == "" || v.Default == "DB_MAX_OPEN_CONNS" { // no default, or one named by another
			continue
		}
		stated[v.Name] = v.Default
	}
	explicit, err := loadConfig(func(k string) string { return stated[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(empty, explicit) {
		t.Errorf("the defaults differ from the table:\n applied %+v\n  stated %+v", empty, explicit)
	}
	if empty.GraphQL != graph.DefaultLimits {
		t.Errorf("GraphQL limits %+v, want graph.DefaultLimits %+v", empty.GraphQL, graph.DefaultLimits)
	}
	if n, _ := strconv.Atoi(stated["DB_MAX_OPEN_CONNS"]); empty.Database.MaxIdleConns != n {
		t.Errorf("DB_MAX_IDLE_CONNS defaults to %d, want DB_MAX_OPEN_CONNS (%d)", empty.Database.MaxIdleConns, n)
	}
	if empty.RequestTimeout != 10*time.Second || empty.ConnectTimeout != 30*time.Second {
		t.Errorf("timeouts %s, %s", empty.RequestTimeout, empty.ConnectTimeout)
	}
}

// JWKS_URL must keep signing keys off plain http, except to this machine's own loopback.
func TestConfigJWKSURL(t *testing.T) {
	cases := []struct {
		name        string
		url         string
		wantRefused bool
	}{
		{"HTTPSAccepted", "https://id.example.com/.well-known/jwks.json", false},
		{"PlainHTTPToLoopbackAddressAccepted", "http://127.0.0.1:8080/jwks.json", false},
		{"PlainHTTPToAnywhereIn127Accepted", "http://127.1.2.3/jwks.json", false},
		{"PlainHTTPToLocalhostAccepted", "http://localhost:8080/jwks.json", false},
		{"PlainHTTPToIPv6LoopbackAccepted", "http://[::1]:8080/jwks.json", false},
		{"PlainHTTPToAnotherHostRefused", "http://id.example.com/.well-known/jwks.json", true},
		{"PlainHTTPToAPrivateAddressRefused", "http://10.0.0.5/jwks.json", true},
		{"PlainHTTPToALocalhostLookalikeRefused", "http://localhost.example.com/jwks.json", true},
		{"FileURLRefused", "file:///etc/keys.json", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string {
				if k == "JWKS_URL" {
					return tc.url
				}
				return ""
			})
			if !tc.wantRefused {
				if err != nil || cfg.Auth.JWKSURL != tc.url {
					t.Errorf("got JWKS URL %q, error %v; want %q accepted", cfg.Auth.JWKSURL, err, tc.url)
				}
				return
			}
			if err == nil {
				t.Fatalf("%q was accepted", tc.url)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "JWKS_URL: ") {
				t.Errorf("got %q, want one line naming JWKS_URL", err)
			}
		})
	}
}

// JWT_ROLES_CLAIM takes a namespaced claim's URL (as Auth0 requires) as well as a dotted path.
func TestConfigRolesClaim(t *testing.T) {
	cases := []struct {
		name        string
		claim       string
		wantRefused bool
	}{
		{"PlainNameAccepted", "groups", false},
		{"DottedPathAccepted", "realm_access.roles", false},
		{"NamespacedURLAccepted", "https://example.com/roles", false},
		{"EmptyPathStepRefused", "realm..roles", true},
		{"TrailingDotRefused", "realm_access.", true},
		{"URLWithoutHostRefused", "https://", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string {
				if k == "JWT_ROLES_CLAIM" {
					return tc.claim
				}
				return ""
			})
			if !tc.wantRefused {
				if err != nil || cfg.Auth.RolesClaim != tc.claim {
					t.Errorf("got roles claim %q, error %v; want %q accepted", cfg.Auth.RolesClaim, err, tc.claim)
				}
				return
			}
			if err == nil {
				t.Fatalf("%q was accepted", tc.claim)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "JWT_ROLES_CLAIM: ") {
				t.Errorf("got %q, want one line naming JWT_ROLES_CLAIM", err)
			}
		})
	}
}

// REQUIRE_IF_MATCH is off unless set; a value that is not a boolean stops start-up.
func TestConfigRequireIfMatch(t *testing.T) {
	cases := []struct {
		name        string
		value       string
		want        bool
		wantRefused bool
	}{
		{"OffByDefault", "", false, false},
		{"TrueTurnsItOn", "true", true, false},
		{"FalseKeepsItOff", "false", false, false},
		{"OneTurnsItOn", "1", true, false},
		{"YesRefused", "yes", false, true},
		{"OnRefused", "on", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string {
				if k == "REQUIRE_IF_MATCH" {
					return tc.value
				}
				return ""
			})
			if !tc.wantRefused {
				if err != nil || cfg.RequireIfMatch != tc.want {
					t.Errorf("got %v, error %v; want %v", cfg.RequireIfMatch, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("%q was accepted", tc.value)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "REQUIRE_IF_MATCH: ") {
				t.Errorf("got %q, want one line naming REQUIRE_IF_MATCH", err)
			}
		})
	}
}

// REQUIRE_IF_MATCH reaches the operation that the program serves, on both edges.
func TestRequireIfMatchReachesTheService(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		r := startRun(t, map[string]string{"DATABASE_URL": databaseURL, "JWT_SECRET": testSecret, "REQUIRE_IF_MATCH": "true"})
		c := r.adminClient(t)
		cases := []struct {
			name        string
			edge        string // "rest" or "graphql"
			withVersion bool
			wantCode    string
		}{
			{"RESTWithoutIfMatchRefused", "rest", false, "PRECONDITION_REQUIRED"},
			{"GraphQLWithoutExpectedVersionRefused", "graphql", false, "PRECONDITION_REQUIRED"},
			{"RESTWithIfMatchApplied", "rest", true, ""},
			{"GraphQLWithExpectedVersionApplied", "graphql", true, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				name := apitest.Uniq("required")
				u := c.CreateUser(t, name, name+"@example.com")
				own := token(t, u.ID)
				var got string
				if tc.edge == "rest" {
					var extra []string
					if tc.withVersion {
						extra = []string{"If-Match", `"1"`}
					}
					got = c.Put(t, own, u.ID, `{"username": "`+name+`-renamed"}`, extra...).Problem(t).Code
				} else {
					input := map[string]any{"username": name + "-renamed"}
					if tc.withVersion {
						input["expectedVersion"] = 1
					}
					got = c.UpdateUser(t, own, u.ID, input).Code()
				}
				if got != tc.wantCode {
					t.Errorf("got code %q, want %q", got, tc.wantCode)
				}
				want := apitest.User{Username: name, Version: 1}
				if tc.wantCode == "" {
					want = apitest.User{Username: name + "-renamed", Version: 2}
				}
				if stored := c.GraphQL(t, own, `{ me { `+apitest.UserFields+` } }`, nil).User(t, "me"); stored.Username != want.Username || stored.Version != want.Version {
					t.Errorf("stored %q at version %d, want %q at version %d", stored.Username, stored.Version, want.Username, want.Version)
				}
			})
		}
	})
}
