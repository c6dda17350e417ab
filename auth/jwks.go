package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// UnknownKeyRefreshInterval is how often, at most, the service fetches the key set, whatever
// prompts it: a token signed with a key the set in use does not hold, a Cache-Control max-age, or
// a retry after a failed fetch. Identity providers publish a new key before they sign with it, so
// one fetch finds it; a stream of tokens with made-up key IDs cannot turn into a stream of fetches.
const UnknownKeyRefreshInterval = time.Minute

// JWKSFetchTimeout bounds one fetch of the key set.
const JWKSFetchTimeout = 5 * time.Second

// MaxJWKSBytes bounds the body of a key set response. A JWKS holds a handful of public keys, a few
// KiB; anything larger is the wrong URL or a hostile server, and not worth the memory.
const MaxJWKSBytes = 64 << 10

// jwksRefreshInterval is how long a key set stays in use before it is fetched again, unless its
// response's Cache-Control max-age asks for sooner: identity providers keep a retired key
// published for longer than this, so no token signed with a current key is refused meanwhile.
const jwksRefreshInterval = 15 * time.Minute

// maxRedirects is net/http's own limit, which a custom CheckRedirect has to apply itself.
const maxRedirects = 10

// errUnknownKey: the token names a key that the key set in use does not hold.
var errUnknownKey = errors.New("unknown signing key")

// CheckJWKSURL reports whether raw may serve signing keys: an https URL, or a plain http one to a
// loopback host (localhost, 127.0.0.0/8, [::1]), which never leaves the machine. Over plain http
// to anywhere else, whoever sits on the network path could substitute keys and sign any token.
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return fmt.Errorf("must be an http(s) URL, such as https://id.example.com/.well-known/jwks.json, not %q", raw)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("must use https: plain http is accepted only to a loopback host (localhost, 127.0.0.0/8, [::1]), not %q", raw)
	}
	return nil
}

// IsLoopbackHost reports whether host, a URL's or a Host header's host without its port, names
// this machine: the name localhost, or a loopback address (127.0.0.0/8, ::1, in brackets or not).
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// jwksKeys is an identity provider's key set, fetched by one background goroutine: every
// jwksRefreshInterval (sooner if Cache-Control says so), and when a token names a key the set
// does not hold. Requests only ever read the set in use; none waits on a fetch, which can take
// up to JWKSFetchTimeout against a slow identity provider. When a fetch fails, the last good set
// stays in use.
type jwksKeys struct {
	url    string
	client *http.Client
	logger *slog.Logger

	// set is nil until a fetch succeeds. Each fetch stores a new set, so the identity of the set
	// tells whether the keys were fetched anew.
	set atomic.Pointer[jwk.Set]
	// wake asks the fetcher for a fetch now. Its one slot makes any number of asks one fetch.
	wake chan struct{}

	mu        sync.Mutex
	lastFetch time.Time // when the latest fetch began, whatever prompted it
}

func newJWKSKeys(url string, logger *slog.Logger) *jwksKeys {
	return &jwksKeys{
		url: url,
		client: &http.Client{
			Timeout:       JWKSFetchTimeout,
			CheckRedirect: sameOriginRedirects,
		},
		logger: logger,
		wake:   make(chan struct{}, 1),
	}
}

// sameOriginRedirects follows a redirect only within the JWKS URL's scheme and host: the URL is
// the one source of signing keys that was configured, and a redirect would otherwise make any
// server it names a source too, or take the fetch from https to plain http.
func sameOriginRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || !strings.EqualFold(req.URL.Host, from.Host) {
		return fmt.Errorf("refused a redirect to %s: only redirects within %s://%s are followed", req.URL.Redacted(), from.Scheme, from.Host)
	}
	return nil
}

// current returns the key set in use now, or nil if there is none (or no JWKS at all). It never
// waits.
func (k *jwksKeys) current() jwk.Set {
	if k == nil {
		return nil
	}
	if set := k.set.Load(); set != nil {
		return *set
	}
	return nil
}

// key returns the key with this ID and the set that holds it. An unknown ID is answered at once
// with errUnknownKey, and asks for a fetch in the background, so that a key the identity provider
// has just published works from the next request on. An empty kid matches the only key of a set
// that has one.
func (k *jwksKeys) key(kid string) (jwk.Key, jwk.Set, error) {
	if set := k.current(); set != nil {
		if key, ok := lookup(set, kid); ok {
			return key, set, nil
		}
	}
	k.refreshSoon()
	return nil, nil, errUnknownKey
}

func lookup(set jwk.Set, kid string) (jwk.Key, bool) {
	if kid == "" {
		if set.Len() != 1 {
			return nil, false
		}
		return set.Key(0)
	}
	return set.LookupKeyID(kid)
}

// refreshSoon asks the fetcher for a fetch, unless one began less than UnknownKeyRefreshInterval
// ago. It notes the ask as the latest fetch at once, so that the tokens that arrive before the
// fetcher gets to it ask for nothing more.
func (k *jwksKeys) refreshSoon() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.lastFetch) < UnknownKeyRefreshInterval {
		return
	}
	k.lastFetch = time.Now()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// refreshLoop fetches the key set when next has passed or a fetch is asked for, until ctx ends.
func (k *jwksKeys) refreshLoop(ctx context.Context, next time.Duration) {
	timer := time.NewTimer(next)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			// An ask that came as the timer fired is answered by the fetch about to begin. Asks
			// are taken before the fetch, never after it: one that came during the fetch may
			// have seen the old set, and must get a fetch of its own.
			select {
			case <-k.wake:
			default:
			}
		case <-k.wake:
		}
		next, err := k.refresh(ctx)
		if err != nil {
			k.logger.Warn("JWKS refresh failed: keeping the last good keys", "url", k.url, "err", err)
		}
		timer.Reset(next)
	}
}

// refresh fetches the key set and puts it in use; when the fetch fails, the set in use stays. It
// returns how long to wait before the next periodic fetch.
func (k *jwksKeys) refresh(ctx context.Context) (time.Duration, error) {
	k.mu.Lock()
	k.lastFetch = time.Now()
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
	defer cancel()
	set, cacheControl, err := k.fetch(ctx)
	if err != nil {
		return UnknownKeyRefreshInterval, err
	}
	k.set.Store(&set)
	k.logger.Debug("JWKS: fetched the key set", "url", k.url, "keys", set.Len())
	return refreshDelay(cacheControl), nil
}

// fetch gets and parses the key set, and returns its response's Cache-Control header. A set
// without keys is a failed fetch: an identity provider that publishes none is broken, and the
// last good keys serve better than none.
func (k *jwksKeys) fetch(ctx context.Context) (jwk.Set, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%s answered %s", k.url, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("reading the key set: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, "", fmt.Errorf("the key set is larger than %d bytes", MaxJWKSBytes)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, "", fmt.Errorf("parsing the key set: %w", err)
	}
	if set.Len() == 0 {
		return nil, "", errors.New("the key set holds no keys")
	}
	return set, res.Header.Get("Cache-Control"), nil
}

// refreshDelay is how long a key set served with this Cache-Control header stays in use: its
// max-age when that is shorter than jwksRefreshInterval, but never less than
// UnknownKeyRefreshInterval, so that a max-age of 0 does not turn into a fetch a second.
func refreshDelay(cacheControl string) time.Duration {
	for directive := range strings.SplitSeq(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		if !strings.EqualFold(name, "max-age") {
			continue
		}
		seconds, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
		if err != nil || seconds < 0 {
			break
		}
		maxAge := time.Duration(min(seconds, int64(jwksRefreshInterval/time.Second))) * time.Second
		return max(maxAge, UnknownKeyRefreshInterval)
	}
	return jwksRefreshInterval
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
