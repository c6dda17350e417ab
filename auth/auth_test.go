package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"usergraph/internal/authtest"
	"usergraph/models"
)

var secret = []byte(authtest.Secret)

func TestVerify(t *testing.T) {
	now := time.Now()
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "7", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	signed := func(extra map[string]any) string { return authtest.SignClaims(t, claims(extra)) }
	valid := signed(nil)
	parts := strings.Split(valid, ".")
	otherPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"1","roles":["admin"],"exp":` + jsonNumber(now.Add(time.Hour).Unix()) + `}`))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		cfg       Config
		token     string
		wantErr   string // a part of the message, or "" for success
		wantAdmin bool
	}{
		{"Valid", Config{}, valid, "", false},
		{"AdminRole", Config{}, signed(map[string]any{"roles": []string{"user", "admin"}}), "", true},
		{"NestedRolesClaim", Config{RolesClaim: "realm_access.roles"}, signed(map[string]any{"realm_access": map[string]any{"roles": []string{"admin"}}}), "", true},
		{"RolesNotAnArray", Config{}, signed(map[string]any{"roles": "admin"}), "", false},
		{"RolesUnderAnotherClaim", Config{RolesClaim: "groups"}, signed(map[string]any{"roles": []string{"admin"}}), "", false},
		{"AlgNone", Config{}, authtest.Unsigned(t, map[string]any{"alg": "none"}, claims(nil)), "invalid", false},
		{"AlgNoneWithSignature", Config{}, authtest.Forge(t, map[string]any{"alg": "none"}, claims(nil), authtest.HMAC(sha256.New, secret)), "invalid", false},
		{"HeaderNamesHS512ButHS256Signature", Config{}, authtest.Forge(t, map[string]any{"alg": "HS512"}, claims(nil), authtest.HMAC(sha256.New, secret)), "invalid", false},
		{"HS512WithTheSameSecret", Config{}, authtest.Mint(t, jwa.HS512, secret, claims(nil), nil), "invalid", false},
		{"RS256", Config{}, authtest.Mint(t, jwa.RS256, rsaKey, map[string]any{"sub": "7", "exp": now.Add(time.Hour).Unix()}, nil), "invalid", false},
		{"WrongSecret", Config{}, authtest.Mint(t, jwa.HS256, []byte(strings.Repeat("x", 32)), claims(nil), nil), "invalid", false},
		{"TamperedPayload", Config{}, parts[0] + "." + otherPayload + "." + parts[2], "invalid", false},
		{"NoSignature", Config{}, parts[0] + "." + parts[1] + ".", "invalid", false},
		{"Expired", Config{}, signed(map[string]any{"exp": now.Add(-time.Minute).Unix()}), "expired", false},
		{"ExpiredWithinSkew", Config{}, signed(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}), "", false},
		{"NotYetValid", Config{}, signed(map[string]any{"nbf": now.Add(time.Minute).Unix()}), "not valid yet", false},
		{"NotYetValidWithinSkew", Config{}, signed(map[string]any{"nbf": now.Add(10 * time.Second).Unix()}), "", false},
		{"IssuedInTheFuture", Config{}, signed(map[string]any{"iat": now.Add(time.Minute).Unix()}), "issued in the future", false},
		{"NoExp", Config{}, signed(map[string]any{"exp": nil}), "required claim", false},
		{"NoSub", Config{}, signed(map[string]any{"sub": nil}), "required claim", false},
		{"IssuerMatches", Config{Issuer: "https://id.example.com"}, signed(map[string]any{"iss": "https://id.example.com"}), "", false},
		{"WrongIssuer", Config{Issuer: "https://id.example.com"}, signed(map[string]any{"iss": "https://evil.example.com"}), "issuer", false},
		{"MissingIssuer", Config{Issuer: "https://id.example.com"}, valid, "issuer", false},
		{"AudienceMatches", Config{Audience: "usergraph"}, signed(map[string]any{"aud": []string{"other", "usergraph"}}), "", false},
		{"WrongAudience", Config{Audience: "usergraph"}, signed(map[string]any{"aud": "billing"}), "audience", false},
		{"TooLong", Config{}, signed(map[string]any{"pad": strings.Repeat("p", 16<<10)}), "too long", false},
		{"NotCompact", Config{}, `{"payload":"e30","signatures":[]}`, "compact", false},
		{"Empty", Config{}, "", "compact", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = secret
			v, err := NewVerifier(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			caller, err := v.Verify(context.Background(), tc.token)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if caller.UserID != "7" || caller.Admin != tc.wantAdmin {
					t.Errorf("caller = %+v, want user 7, admin %v", caller, tc.wantAdmin)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewVerifierRefusesShortSecret(t *testing.T) {
	if _, err := NewVerifier(context.Background(), Config{Secret: []byte(strings.Repeat("s", 31))}); err == nil {
		t.Error("a 31-byte secret was accepted")
	}
}

// A token from Sign carries its roles where an identity provider with the same claim name would
// put them, and a Verifier with the same Config reads them back.
func TestSignRoundTrip(t *testing.T) {
	cases := []struct {
		name         string
		rolesClaim   string
		wantTopClaim string // the top-level claim that holds the roles
	}{
		{"DefaultClaim", "", "roles"},
		{"DottedPathNests", "realm_access.roles", "realm_access"},
		{"NamespacedClaimStaysWhole", "https://example.com/roles", "https://example.com/roles"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Secret: secret, Issuer: "iss", Audience: "aud", RolesClaim: tc.rolesClaim}
			tok, err := Sign(cfg, TokenRequest{Subject: "12", Roles: []string{"admin"}, TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if parsed, err := jwt.ParseInsecure([]byte(tok)); err != nil {
				t.Fatal(err)
			} else if _, ok := parsed.Get(tc.wantTopClaim); !ok {
				t.Errorf("no claim %q in %v", tc.wantTopClaim, parsed.PrivateClaims())
			}
			v, err := NewVerifier(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ask(serveMiddleware(t, v), tok)
			if want := (answer{UserID: "12", Admin: true}); err != nil || got != want {
				t.Errorf("got %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

// JWT_ROLES_CLAIM names the roles claim whatever the identity provider's convention: a claim of
// exactly that name (Auth0's namespaced claims are named by a URL), or else a path into nested
// claims (Keycloak's realm_access.roles).
func TestRolesClaimNames(t *testing.T) {
	admin := []string{"user", "admin"}
	cases := []struct {
		name       string
		rolesClaim string
		claims     map[string]any
		wantAdmin  bool
	}{
		{"NamespacedClaimNamedByAURL", "https://example.com/roles", map[string]any{"https://example.com/roles": admin}, true},
		{"AnotherNamespaceIsNotRead", "https://example.com/roles", map[string]any{"https://other.example.com/roles": admin}, false},
		{"DottedPathIntoNestedClaims", "realm_access.roles", map[string]any{"realm_access": map[string]any{"roles": admin}}, true},
		{"FlatClaimNamedWithDotsIsUsedAsItIs", "realm_access.roles", map[string]any{"realm_access.roles": admin}, true},
		{"FlatClaimComesBeforeTheNestedOne", "realm_access.roles", map[string]any{"realm_access.roles": []string{"user"}, "realm_access": map[string]any{"roles": admin}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(context.Background(), Config{Secret: secret, RolesClaim: tc.rolesClaim})
			if err != nil {
				t.Fatal(err)
			}
			claims := map[string]any{"sub": "7", "exp": time.Now().Add(time.Hour).Unix()}
			for name, value := range tc.claims {
				claims[name] = value
			}
			tok := authtest.SignClaims(t, claims)
			got, err := ask(serveMiddleware(t, v), tok)
			if want := (answer{UserID: "7", Admin: tc.wantAdmin}); err != nil || got != want {
				t.Errorf("got %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	v, _ := NewVerifier(context.Background(), Config{Secret: secret})
	tok := authtest.Token(t, "3")
	type outcome struct {
		caller *models.Caller
		code   models.Code
		msg    string
	}
	probe := func(headers []string) outcome {
		var got outcome
		h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.caller = models.CallerFrom(r.Context())
			_, err := models.Authenticate(r.Context())
			got.code, got.msg = models.ErrorCode(err), models.ErrorMessage(err)
		}))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, v := range headers {
			req.Header.Add("Authorization", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		return got
	}
	cases := []struct {
		name       string
		headers    []string
		wantCaller bool
		wantMsg    string
	}{
		{"NoHeaderIsAnonymous", nil, false, "authentication required"},
		{"Bearer", []string{"Bearer " + tok}, true, ""},
		{"SchemeIsCaseInsensitive", []string{"bearer " + tok}, true, ""},
		{"BasicScheme", []string{"Basic dXNlcjpwYXNz"}, false, `must be "Bearer <token>"`},
		{"EmptyBearer", []string{"Bearer "}, false, "not a JWT"},
		{"BearerWithoutToken", []string{"Bearer"}, false, "not a JWT"},
		{"TwoHeaders", []string{"Bearer " + tok, "Bearer " + tok}, false, "one Authorization header"},
		{"InvalidToken", []string{"Bearer a.b.c"}, false, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := probe(tc.headers)
			if (got.caller != nil) != tc.wantCaller {
				t.Fatalf("caller = %+v, want present: %v", got.caller, tc.wantCaller)
			}
			if tc.wantCaller {
				if got.caller.UserID != "3" {
					t.Errorf("caller = %+v", got.caller)
				}
				return
			}
			if got.code != models.Unauthenticated || !strings.Contains(got.msg, tc.wantMsg) {
				t.Errorf("got %s %q, want UNAUTHENTICATED about %q", got.code, got.msg, tc.wantMsg)
			}
		})
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A verified token is remembered, but never past its exp (with the skew), nor before its nbf.
func TestVerifiedTokensExpire(t *testing.T) {
	v, _ := NewVerifier(context.Background(), Config{Secret: secret})
	start := time.Now()
	v.now = func() time.Time { return start }
	claims := map[string]any{"sub": "7", "iat": start.Unix(), "nbf": start.Unix(), "exp": start.Add(time.Minute).Unix()}
	tok := authtest.SignClaims(t, claims)
	for _, tc := range []struct {
		name  string
		at    time.Duration
		valid bool
	}{
		{"Fresh", 0, true},
		{"CachedWithinExp", 50 * time.Second, true},
		{"CachedWithinSkew", time.Minute + 20*time.Second, true},
		{"CachedPastSkew", time.Minute + 40*time.Second, false},
		{"BeforeNotBeforeAndSkew", -time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v.now = func() time.Time { return start.Add(tc.at) }
			if _, err := v.Verify(context.Background(), tok); (err == nil) != tc.valid {
				t.Errorf("err = %v, want valid %v", err, tc.valid)
			}
		})
	}
}

// The cache of verified tokens stays within its size, and keeps the token just added.
func TestTokenCacheStaysBounded(t *testing.T) {
	c := newTokenCache(3)
	for i := range 10 {
		c.add(strconv.Itoa(i), verifiedToken{})
	}
	if len(c.entries) != 3 {
		t.Errorf("%d entries, want 3", len(c.entries))
	}
	if _, ok := c.get("9"); !ok {
		t.Error("the token added last is gone")
	}
}
