package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// UnknownKeyRefreshInterval is how often, at most, a token signed with a key the cached key set
// does not hold makes the service fetch the set again. Identity providers publish a new key before
// they sign with it, so one fetch finds it; a stream of tokens with made-up key IDs cannot turn
// into a stream of fetches.
const UnknownKeyRefreshInterval = time.Minute

// JWKSFetchTimeout bounds one fetch of the key set.
const JWKSFetchTimeout = 5 * time.Second

// errUnknownKey: the token names a key that the key set does not hold, even after a refresh.
var errUnknownKey = errors.New("unknown signing key")

// jwksKeys is an identity provider's key set, cached and refreshed in the background by jwx: as
// often as its Cache-Control says, and at least every 15 minutes. When a refresh fails, the last
// good set stays in use.
type jwksKeys struct {
	url    string
	cache  *jwk.Cache
	logger *slog.Logger

	mu          sync.Mutex
	lastRefresh time.Time // of refreshes for unknown key IDs
}

// newJWKSKeys fetches the key set at url once, and keeps it fresh until ctx ends.
func newJWKSKeys(ctx context.Context, url string, logger *slog.Logger) (*jwksKeys, error) {
	cache := jwk.NewCache(ctx, jwk.WithErrSink(errSink{logger}))
	client := &http.Client{Timeout: JWKSFetchTimeout}
	if err := cache.Register(url,
		jwk.WithHTTPClient(client),
		jwk.WithMinRefreshInterval(15*time.Minute),
		jwk.WithRefreshInterval(15*time.Minute),
	); err != nil {
		return nil, err
	}
	k := &jwksKeys{url: url, cache: cache, logger: logger, lastRefresh: time.Now()}
	fetchCtx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
	defer cancel()
	set, err := cache.Refresh(fetchCtx, url)
	if err != nil {
		return k, fmt.Errorf("fetching the key set: %w", err)
	}
	if set.Len() == 0 {
		return k, errors.New("the key set holds no keys")
	}
	return k, nil
}

// errSink logs failed background refreshes; the last good keys stay in use.
type errSink struct{ logger *slog.Logger }

func (s errSink) Error(err error) {
	s.logger.Warn("JWKS refresh failed: keeping the last good keys", "err", err)
}

// current returns the key set in use now, or nil if there is none (or no JWKS at all). A new
// fetch makes a new set, so the identity of the set tells whether the keys were fetched anew.
func (k *jwksKeys) current(ctx context.Context) jwk.Set {
	if k == nil {
		return nil
	}
	set, err := k.cache.Get(ctx, k.url)
	if err != nil {
		return nil
	}
	return set
}

// key returns the key with this ID, fetching the set again if it is unknown and the last such
// fetch is more than UnknownKeyRefreshInterval ago. An empty kid matches the only key of a set
// that has one.
func (k *jwksKeys) key(ctx context.Context, kid string) (jwk.Key, error) {
	if key, ok := k.lookup(ctx, kid, false); ok {
		return key, nil
	}
	if !k.mayRefresh() {
		return nil, errUnknownKey
	}
	if key, ok := k.lookup(ctx, kid, true); ok {
		return key, nil
	}
	return nil, errUnknownKey
}

func (k *jwksKeys) lookup(ctx context.Context, kid string, refresh bool) (jwk.Key, bool) {
	get := k.cache.Get
	if refresh {
		get = k.cache.Refresh
	}
	set, err := get(ctx, k.url)
	if err != nil {
		if refresh {
			k.logger.Warn("JWKS refresh failed: keeping the last good keys", "err", err)
			// The failed fetch does not replace the cached set.
			set, err = k.cache.Get(ctx, k.url)
		}
		if err != nil {
			return nil, false
		}
	}
	if kid == "" {
		if set.Len() != 1 {
			return nil, false
		}
		return set.Key(0)
	}
	return set.LookupKeyID(kid)
}

// mayRefresh reports whether an unknown key ID may trigger a fetch now, and if so counts it.
func (k *jwksKeys) mayRefresh() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.lastRefresh) < UnknownKeyRefreshInterval {
		return false
	}
	k.lastRefresh = time.Now()
	return true
}

// fits reports whether key may verify a signature made with alg: its type and curve must be the
// algorithm's, its own alg (if it names one) must be alg, and its use (if given) signing. Without
// this a key could be used with an algorithm it was never meant for.
func fits(key jwk.Key, alg jwa.SignatureAlgorithm) bool {
	if a := key.Algorithm(); a != nil && a.String() != "" && a.String() != alg.String() {
		return false
	}
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return false
	}
	switch alg {
	case jwa.RS256:
		return key.KeyType() == jwa.RSA
	case jwa.ES256:
		ec, ok := key.(jwk.ECDSAPublicKey)
		return ok && ec.Crv() == jwa.P256
	case jwa.EdDSA:
		okp, ok := key.(jwk.OKPPublicKey)
		return ok && okp.Crv() == jwa.Ed25519
	}
	return false
}
