// Package auth turns a request's bearer token into the caller that the operations in models act
// for, and signs tokens for local use.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"usergraph/models"
)

// MinSecretLength is the shortest HS256 secret accepted, in bytes: as long as the hash it keys.
const MinSecretLength = 32

// Skew is how far a token's exp, nbf and iat may be off, to allow for clocks that disagree.
const Skew = 30 * time.Second

// MaxTokenLength bounds the size of a bearer token that is parsed at all. Real access tokens are a
// few hundred bytes to a few KiB.
const MaxTokenLength = 8 << 10

// AdminRole is the role that makes a caller an admin.
const AdminRole = "admin"

// Config says which tokens a Verifier accepts.
type Config struct {
	// Secret is the HS256 key. It must be at least MinSecretLength bytes long.
	Secret []byte
	// Issuer and Audience, when not empty, must match the token's iss and aud.
	Issuer   string
	Audience string
	// RolesClaim names the claim that holds the caller's roles, an array of strings. A dotted
	// name ("realm_access.roles") reaches into nested objects. Empty means "roles".
	RolesClaim string
}

// Verifier checks bearer tokens.
type Verifier struct {
	cfg        Config
	rolesPath  []string
	keys       jws.KeyProvider
	parseOpts  []jwt.ParseOption
	hmacSecret []byte
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Secret) < MinSecretLength {
		return nil, fmt.Errorf("the HS256 secret must be at least %d bytes long", MinSecretLength)
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	v := &Verifier{cfg: cfg, rolesPath: strings.Split(cfg.RolesClaim, "."), hmacSecret: cfg.Secret}
	v.keys = jws.KeyProviderFunc(v.hmacKey)
	v.parseOpts = []jwt.ParseOption{
		jwt.WithKeyProvider(v.keys),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(Skew),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("sub"),
	}
	if cfg.Issuer != "" {
		v.parseOpts = append(v.parseOpts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		v.parseOpts = append(v.parseOpts, jwt.WithAudience(cfg.Audience))
	}
	return v, nil
}

// hmacKey offers the HS256 secret for a signature whose header says HS256, and nothing for any
// other. jwx verifies with the algorithm of the key it is given, whatever the header claims; a
// token that names one algorithm and is signed with another is forged or broken either way.
func (v *Verifier) hmacKey(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	if alg := sig.ProtectedHeaders().Algorithm(); alg != jwa.HS256 {
		return fmt.Errorf("algorithm %q is not accepted", alg)
	}
	sink.Key(jwa.HS256, v.hmacSecret)
	return nil
}

// Verify checks a bearer token and returns the caller it speaks for. Its error's message is fit
// to show the client.
func (v *Verifier) Verify(ctx context.Context, token string) (*models.Caller, error) {
	if len(token) > MaxTokenLength {
		return nil, errors.New("the bearer token is too long")
	}
	if strings.Count(token, ".") != 2 {
		return nil, errors.New("the bearer token is not a JWT in compact form")
	}
	tok, err := jwt.ParseString(token, append(v.parseOpts, jwt.WithContext(ctx))...)
	if err != nil {
		return nil, errors.New(describe(err))
	}
	return &models.Caller{UserID: tok.Subject(), Admin: hasRole(claim(tok, v.rolesPath), AdminRole)}, nil
}

// describe says why a token was refused, without details a forger could use.
func describe(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return "the bearer token has expired"
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return "the bearer token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return "the bearer token was issued in the future (iat)"
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return "the bearer token's issuer (iss) is not accepted"
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return "the bearer token's audience (aud) is not accepted"
	case errors.Is(err, jwt.ErrRequiredClaim()):
		return "the bearer token lacks a required claim (exp and sub are required)"
	}
	return "the bearer token is invalid"
}

// claim returns the value at a dotted path of the token's claims, or nil.
func claim(tok jwt.Token, path []string) any {
	v, ok := tok.Get(path[0])
	if !ok {
		return nil
	}
	for _, name := range path[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[name]
	}
	return v
}

func hasRole(roles any, role string) bool {
	list, _ := roles.([]any)
	for _, r := range list {
		if r == role {
			return true
		}
	}
	return false
}

// Middleware authenticates each request that carries an Authorization header and records the
// outcome in its context: the caller (models.ContextWithCaller), or why its token was rejected
// (models.ContextWithAuthError). A request without the header goes on as anonymous, and the
// operations decide what an anonymous caller may do.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		scheme, token, _ := strings.Cut(values[0], " ")
		switch {
		case len(values) > 1:
			ctx = models.ContextWithAuthError(ctx, "send one Authorization header, not several")
		case !strings.EqualFold(scheme, "Bearer"):
			ctx = models.ContextWithAuthError(ctx, `the Authorization header must be "Bearer <token>"`)
		default:
			caller, err := v.Verify(ctx, strings.TrimLeft(token, " "))
			if err != nil {
				ctx = models.ContextWithAuthError(ctx, err.Error())
			} else {
				ctx = models.ContextWithCaller(ctx, caller)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
