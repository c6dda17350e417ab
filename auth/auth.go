// Package auth turns a request's bearer token into the caller that the operations in models act
// for, and signs tokens for local use.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
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

// Config says which tokens a Verifier accepts: HS256 tokens signed with Secret, tokens signed
// with the keys of the JWKS at JWKSURL (RS256, ES256, EdDSA), or both.
type Config struct {
	// Secret is the HS256 key. If set, it must be at least MinSecretLength bytes long.
	Secret []byte
	// JWKSURL is where an identity provider publishes its public keys: an https URL, or plain
	// http to a loopback host (see CheckJWKSURL).
	JWKSURL string
	// Issuer and Audience, when not empty, must match the token's iss and aud.
	Issuer   string
	Audience string
	// RolesClaim names the claim that holds the caller's roles, an array of strings. A claim of
	// the token with exactly this name is used as it is, so that namespaced claims such as
	// "https://example.com/roles" (which Auth0 requires) work; otherwise a dotted name
	// ("realm_access.roles") reaches into nested objects. Empty means "roles".
	RolesClaim string
	// Logger hears where the key set comes from, and of fetches that failed. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Verifier checks bearer tokens.
type Verifier struct {
	cfg       Config
	rolesPath []string
	jwks      *jwksKeys
	parseOpts []jwt.ParseOption
	verified  *tokenCache
	// now is the clock for exp, nbf and iat; tests move it.
	now func() time.Time
}

// NewVerifier returns a Verifier for cfg. With a JWKSURL it fetches the key set before it returns,
// and keeps it fresh until ctx ends; when that first fetch fails it is an error, unless a Secret
// is configured too, in which case it logs the failure and keeps trying in the background. A
// JWKSURL that CheckJWKSURL refuses is an error either way.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("no key: set a secret, a JWKS URL, or both")
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < MinSecretLength {
		return nil, fmt.Errorf("the HS256 secret must be at least %d bytes long", MinSecretLength)
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &Verifier{cfg: cfg, rolesPath: strings.Split(cfg.RolesClaim, "."), verified: newTokenCache(verifiedTokenCacheSize), now: time.Now}
	if cfg.JWKSURL != "" {
		if err := CheckJWKSURL(cfg.JWKSURL); err != nil {
			return nil, err
		}
		cfg.Logger.Info("JWKS: signing keys come from this URL only, over https (plain http only to a loopback host), following redirects only within its scheme and host, in bodies of at most max_bytes",
			"url", cfg.JWKSURL, "max_bytes", MaxJWKSBytes)
		keys := newJWKSKeys(cfg.JWKSURL, cfg.Logger)
		next, err := keys.refresh(ctx)
		if err != nil {
			err = fmt.Errorf("fetching the key set: %w", err)
			if len(cfg.Secret) == 0 {
				return nil, err
			}
			cfg.Logger.Warn("JWKS: the first fetch failed; HS256 tokens work meanwhile, and the fetch is retried", "url", cfg.JWKSURL, "err", err)
		}
		go keys.refreshLoop(ctx, next)
		v.jwks = keys
	}
	// The key provider is added per token by Verify, which needs to learn the key set it used.
	v.parseOpts = []jwt.ParseOption{
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(Skew),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return v.now() })),
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

// keyFor offers the one key that may verify a signature, chosen by the algorithm its header names:
// the secret for HS256, the key set's key with the header's kid for RS256, ES256 and EdDSA, and
// nothing for any other algorithm, "none" included. jwx verifies with the algorithm of the key it
// is given, whatever the header claims, so the header's claim is checked here: a token that names
// one algorithm and is signed with another is forged or broken either way. Keeping HS256 to the
// secret also defeats the old trick of signing HS256 with a public key's bytes as the secret.
// The key set the key came from goes to *from; HS256 never reads the key set.
func (v *Verifier) keyFor(sink jws.KeySink, sig *jws.Signature, from *jwk.Set) error {
	headers := sig.ProtectedHeaders()
	alg := headers.Algorithm()
	switch alg {
	case jwa.HS256:
		if len(v.cfg.Secret) == 0 {
			return fmt.Errorf("algorithm %q is not accepted", alg)
		}
		sink.Key(jwa.HS256, v.cfg.Secret)
		return nil
	case jwa.RS256, jwa.ES256, jwa.EdDSA:
		if v.jwks == nil {
			return fmt.Errorf("algorithm %q is not accepted", alg)
		}
		key, set, err := v.jwks.key(headers.KeyID())
		if err != nil {
			return err
		}
		if !fits(key, alg) {
			return fmt.Errorf("key %q does not fit algorithm %q", headers.KeyID(), alg)
		}
		*from = set
		sink.Key(alg, key)
		return nil
	}
	return fmt.Errorf("algorithm %q is not accepted", alg)
}

// Verify checks a bearer token and returns the caller it speaks for. Its error's message is fit
// to show the client. It never waits on the network, a key set fetch included, so ctx does not
// bound it.
func (v *Verifier) Verify(_ context.Context, token string) (*models.Caller, error) {
	if len(token) > MaxTokenLength {
		return nil, errors.New("the bearer token is too long")
	}
	if strings.Count(token, ".") != 2 {
		return nil, errors.New("the bearer token is not a JWT in compact form")
	}
	now := v.now()
	if c, ok := v.verified.get(token); ok {
		if now.After(c.notBefore) && now.Before(c.expires) && (c.keys == nil || c.keys == v.jwks.current()) {
			return c.caller, nil
		}
		v.verified.remove(token)
	}
	var keys jwk.Set
	provider := jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		return v.keyFor(sink, sig, &keys)
	})
	tok, err := jwt.ParseString(token, append([]jwt.ParseOption{jwt.WithKeyProvider(provider)}, v.parseOpts...)...)
	if err != nil {
		return nil, errors.New(describe(err))
	}
	caller := &models.Caller{UserID: tok.Subject(), Admin: hasRole(claim(tok, v.cfg.RolesClaim, v.rolesPath), AdminRole)}
	c := verifiedToken{caller: caller, expires: tok.Expiration().Add(Skew), keys: keys}
	if nbf := tok.NotBefore(); !nbf.IsZero() {
		c.notBefore = nbf.Add(-Skew)
	}
	v.verified.add(token, c)
	return caller, nil
}

// verifiedTokenCacheSize bounds how many verified tokens a Verifier remembers.
const verifiedTokenCacheSize = 4096

// verifiedToken is what a Verifier remembers of a token it verified: who it speaks for, and the
// window in which it stays valid. A client sends the same token with every request until it
// expires; checking its signature and claims once, rather than every time, takes the largest
// single cost off each request. Only tokens that passed every check are remembered, under their
// whole text, so a token that differs by a byte is verified afresh.
//
// The key set a token was verified under is remembered too: when the identity provider's keys
// are fetched anew (every 15 minutes, or after a rotation), tokens are verified again, so that
// one signed with a retired key stops working within one fetch, as it would without the cache.
// An HS256 token has no key set (nil): a fetch has no bearing on the secret.
type verifiedToken struct {
	caller             *models.Caller
	notBefore, expires time.Time
	keys               jwk.Set
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
	case errors.Is(err, errUnknownKey):
		return "the bearer token is signed with a key the identity provider does not publish (kid)"
	}
	return "the bearer token is invalid"
}

// claim returns the token's claim with this name or, when it has none, the value at path (the
// name split at its dots) in its nested claims, or nil. The name comes first because a namespaced
// claim is named by a URL, whose dots are no path.
func claim(tok jwt.Token, name string, path []string) any {
	if v, ok := tok.Get(name); ok || len(path) == 1 {
		return v
	}
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
// (models.ContextWithAuthError). A request without the header goes on as anonymous, as it came,
// and the operations decide what an anonymous caller may do.
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
