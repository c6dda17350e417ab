package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"usergraph/internal/authtest"
)

// provider is an identity provider as far as tokens go: private keys it signs with, and a JWKS
// endpoint that publishes the public halves of the ones it currently publishes.
type provider struct {
	t       *testing.T
	server  *httptest.Server
	fetches atomic.Int64

	mu        sync.Mutex
	published []jwk.Key // public keys
	failing   bool
	padTo     int           // when more than the key set's size, its body is padded to this many bytes
	gate      chan struct{} // when not nil, each fetch waits for it to close
	asked     chan struct{} // hears of each fetch that waits for gate
}

func newProvider(t *testing.T) *provider {
	p := &provider{t: t}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		gate, asked := p.gate, p.asked
		p.mu.Unlock()
		if gate != nil {
			asked <- struct{}{}
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.failing {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		set := jwk.NewSet()
		for _, k := range p.published {
			set.AddKey(k)
		}
		body, err := json.Marshal(set)
		if err != nil {
			p.t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(padded(body, p.padTo))
	}))
	t.Cleanup(p.server.Close)
	return p
}

// padded returns the JSON object body with a member added that makes it size bytes long, or body
// itself if it is that long already.
func padded(body []byte, size int) []byte {
	const member = `"padding":"",`
	n := size - len(body) - len(member)
	if n < 0 {
		return body
	}
	return []byte(`{"padding":"` + strings.Repeat("p", n) + `",` + string(body[1:]))
}

// hold makes each fetch wait until release is called, or the test ends. asked receives a value
// as each fetch arrives.
func (p *provider) hold(t *testing.T) (asked <-chan struct{}, release func()) {
	gate, arrivals := make(chan struct{}), make(chan struct{}, 100)
	p.mu.Lock()
	p.gate, p.asked = gate, arrivals
	p.mu.Unlock()
	release = sync.OnceFunc(func() {
		p.mu.Lock()
		p.gate = nil
		p.mu.Unlock()
		close(gate)
	})
	t.Cleanup(release)
	return arrivals, release
}

func (p *provider) setPadTo(size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.padTo = size
}

// privateKey wraps a raw private key as a JWK with this kid.
func privateKey(t *testing.T, raw any, kid string) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	k.Set(jwk.KeyIDKey, kid)
	return k
}

// publish makes exactly these keys' public halves the published set.
func (p *provider) publish(keys ...jwk.Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = nil
	for _, k := range keys {
		pub, err := k.PublicKey()
		if err != nil {
			p.t.Fatal(err)
		}
		p.published = append(p.published, pub)
	}
}

func (p *provider) setFailing(failing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = failing
}

// sign makes a token for sub 7, valid for an hour, signed by key with alg, with extra protected
// headers.
func sign(t *testing.T, alg jwa.SignatureAlgorithm, key any, headers map[string]any) string {
	t.Helper()
	now := time.Now()
	return authtest.Mint(t, alg, key, map[string]any{"sub": "7", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, headers)
}

func TestJWKS(t *testing.T) {
	rsaRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecRaw, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384Raw, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edRaw, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, ecKey, ec384Key, edKey := privateKey(t, rsaRaw, "rsa-1"), privateKey(t, ecRaw, "ec-1"), privateKey(t, ec384Raw, "ec384-1"), privateKey(t, edRaw, "ed-1")
	strangerRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	stranger := privateKey(t, strangerRaw, "rsa-1") // the published kid, another key

	p := newProvider(t)
	p.publish(rsaKey, ecKey, ec384Key, edKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newLogRecorder()
	v, err := NewVerifier(ctx, Config{JWKSURL: p.server.URL, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}

	// The RSA public key's PEM bytes, as an attacker would take them from the JWKS for an HS256
	// secret.
	der, _ := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	// A server that a jku or x5u header points at: it must never be asked.
	lured := atomic.Int64{}
	lure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { lured.Add(1) }))
	defer lure.Close()

	cases := []struct {
		name    string
		token   string
		wantErr string
	}{
		{"RS256", sign(t, jwa.RS256, rsaKey, nil), ""},
		{"ES256", sign(t, jwa.ES256, ecKey, nil), ""},
		{"EdDSA", sign(t, jwa.EdDSA, edKey, nil), ""},
		{"ES384NotAccepted", sign(t, jwa.ES384, ec384Key, nil), "invalid"},
		{"PS256NotAccepted", sign(t, jwa.PS256, rsaKey, nil), "invalid"},
		{"RS256WithAnECKeysKid", sign(t, jwa.RS256, rsaRaw, map[string]any{"kid": "ec-1"}), "invalid"},
		{"StrangerSignsWithPublishedKid", sign(t, jwa.RS256, stranger, nil), "invalid"},
		{"HS256WithThePublicKeyAsSecret", sign(t, jwa.HS256, publicPEM, map[string]any{"kid": "rsa-1"}), "invalid"},
		{"HS256WithoutASecretConfigured", sign(t, jwa.HS256, secret, nil), "invalid"},
		{"UnknownKid", sign(t, jwa.RS256, privateKey(t, strangerRaw, "rsa-9"), nil), "kid"},
		{"JKUToAnotherKeySet", sign(t, jwa.RS256, privateKey(t, strangerRaw, "lured"), map[string]any{"jku": lure.URL}), "kid"},
		{"X5UToAnotherCertificate", sign(t, jwa.RS256, privateKey(t, strangerRaw, "lured-x5u"), map[string]any{"x5u": lure.URL}), "kid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			caller, err := v.Verify(context.Background(), tc.token)
			if tc.wantErr == "" {
				if err != nil || caller.UserID != "7" {
					t.Fatalf("got %+v, %v", caller, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
	if n := lured.Load(); n != 0 {
		t.Errorf("the server a jku/x5u header named was asked %d times", n)
	}

	t.Run("UnknownKidsRefreshAtMostOncePerInterval", func(t *testing.T) {
		forgetLastFetch(v)
		before, logged := p.fetches.Load(), logs.len()
		for i := range 50 {
			tok := sign(t, jwa.RS256, privateKey(t, strangerRaw, "made-up-"+string(rune('a'+i%26))), nil)
			if _, err := v.Verify(context.Background(), tok); err == nil {
				t.Fatal("a token with a made-up kid was accepted")
			}
		}
		logs.waitFor(t, logged, "JWKS: fetched")
		if got := p.fetches.Load() - before; got != 1 {
			t.Errorf("50 tokens with unknown kids caused %d fetches, want 1", got)
		}
	})

	t.Run("KeyRotation", func(t *testing.T) {
		newRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
		newKey := privateKey(t, newRaw, "rsa-2")
		oldToken, newToken := sign(t, jwa.RS256, rsaKey, nil), sign(t, jwa.RS256, newKey, nil)
		if _, err := v.Verify(context.Background(), oldToken); err != nil {
			t.Fatalf("before the rotation, a token signed with the current key: %v", err)
		}
		p.publish(newKey, ecKey, edKey) // rsa-1 retired, rsa-2 introduced
		forgetLastFetch(v)
		before, logged := p.fetches.Load(), logs.len()
		if _, err := v.Verify(context.Background(), newToken); err == nil || !strings.Contains(err.Error(), "kid") {
			t.Errorf("before the new key is fetched, a token signed with it: %v, want an unknown key", err)
		}
		logs.waitFor(t, logged, "JWKS: fetched")
		if _, err := v.Verify(context.Background(), newToken); err != nil {
			t.Errorf("a token signed with the new key: %v", err)
		}
		if got := p.fetches.Load() - before; got != 1 {
			t.Errorf("%d fetches to find the new key, want 1", got)
		}
		if _, err := v.Verify(context.Background(), oldToken); err == nil {
			t.Error("a token signed with the retired key was accepted")
		}
	})

	t.Run("FailedRefreshKeepsLastGoodKeys", func(t *testing.T) {
		p.setFailing(true)
		defer p.setFailing(false)
		forgetLastFetch(v)
		before, logged := p.fetches.Load(), logs.len()
		if _, err := v.Verify(context.Background(), sign(t, jwa.RS256, privateKey(t, strangerRaw, "rsa-3"), nil)); err == nil {
			t.Error("an unknown kid was accepted")
		}
		logs.waitFor(t, logged, "JWKS refresh failed")
		if p.fetches.Load() == before {
			t.Fatal("no refresh was tried")
		}
		if _, err := v.Verify(context.Background(), sign(t, jwa.ES256, ecKey, nil)); err != nil {
			t.Errorf("after a failed refresh, a token signed with a cached key: %v", err)
		}
	})
}

func TestJWKSAtStartUp(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("FailsWithoutAnotherKey", func(t *testing.T) {
		if _, err := NewVerifier(ctx, Config{JWKSURL: down.URL}); err == nil {
			t.Error("a JWKS that cannot be fetched was accepted as the only key")
		}
	})
	t.Run("HS256WorksBesideAnUnreachableJWKS", func(t *testing.T) {
		v, err := NewVerifier(ctx, Config{JWKSURL: down.URL, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		tok := authtest.Token(t, "7")
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("HS256: %v", err)
		}
	})
	t.Run("BothKindsTogether", func(t *testing.T) {
		p := newProvider(t)
		edPub, edRaw, _ := ed25519.GenerateKey(rand.Reader)
		_ = edPub
		key := privateKey(t, edRaw, "ed")
		p.publish(key)
		v, err := NewVerifier(ctx, Config{JWKSURL: p.server.URL, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		hs := authtest.Token(t, "7")
		for name, tok := range map[string]string{"HS256": hs, "EdDSA": sign(t, jwa.EdDSA, key, nil)} {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

// A token signed with the identity provider's key is held to the same claims as one signed with
// the secret, and neither key can be turned into a forgery for the other. The verifier holds both,
// with an issuer and an audience, as a service that moves from a shared secret to an identity
// provider does.
func TestIdentityProviderTokensBesideASecret(t *testing.T) {
	rsaRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	key := privateKey(t, rsaRaw, "idp-1")
	p := newProvider(t)
	p.publish(key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifier(ctx, Config{Secret: secret, JWKSURL: p.server.URL, Issuer: "https://id.example.com", Audience: "usergraph"})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveMiddleware(t, v)

	now := time.Now()
	claims := func(changes map[string]any) map[string]any {
		c := map[string]any{"sub": "7", "iss": "https://id.example.com", "aud": "usergraph", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	fromIdP := func(changes map[string]any) string { return authtest.Mint(t, jwa.RS256, key, claims(changes), nil) }
	// The public key's PEM bytes, as an attacker takes them from the JWKS for an HS256 secret.
	der, _ := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	parts := strings.Split(fromIdP(nil), ".")
	adminPayload, _ := json.Marshal(claims(map[string]any{"sub": "admin", "roles": []string{AdminRole}}))

	cases := []struct {
		name  string
		token string
		want  answer
	}{
		{"ValidTokenIsAccepted", fromIdP(nil), answer{UserID: "7"}},
		{"HS256SignedWithThePublicKeyIsRefused", authtest.Mint(t, jwa.HS256, publicPEM, claims(nil), map[string]any{"kid": "idp-1"}), answer{Refusal: "the bearer token is invalid"}},
		{"PayloadSwappedForAnAdminsIsRefused", parts[0] + "." + base64.RawURLEncoding.EncodeToString(adminPayload) + "." + parts[2], answer{Refusal: "the bearer token is invalid"}},
		{"ExpiredIsRefused", fromIdP(map[string]any{"exp": now.Add(-time.Minute).Unix()}), answer{Refusal: "the bearer token has expired"}},
		{"NotBeforeInTheFutureIsRefused", fromIdP(map[string]any{"nbf": now.Add(time.Minute).Unix()}), answer{Refusal: "the bearer token is not valid yet (nbf)"}},
		{"NoExpIsRefused", fromIdP(map[string]any{"exp": nil}), answer{Refusal: "the bearer token lacks a required claim (exp and sub are required)"}},
		{"WrongIssuerIsRefused", fromIdP(map[string]any{"iss": "https://evil.example.com"}), answer{Refusal: "the bearer token's issuer (iss) is not accepted"}},
		{"WrongAudienceIsRefused", fromIdP(map[string]any{"aud": "billing"}), answer{Refusal: "the bearer token's audience (aud) is not accepted"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ask(srv, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// While a key set fetch hangs on a slow identity provider, requests are still answered at once:
// they read the keys in use, and a token with an unknown kid is refused rather than kept waiting
// for the fetch it asked for.
func TestRequestsNeverWaitOnAFetch(t *testing.T) {
	rsaRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	strangerRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	known := privateKey(t, rsaRaw, "rsa-1")
	p := newProvider(t)
	p.publish(known)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newLogRecorder()
	v, err := NewVerifier(ctx, Config{Secret: secret, JWKSURL: p.server.URL, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveMiddleware(t, v)
	hs256 := authtest.Token(t, "7")

	asked, release := p.hold(t)
	forgetLastFetch(v)
	before := p.fetches.Load()
	go ask(srv, sign(t, jwa.RS256, privateKey(t, strangerRaw, "unknown-1"), nil))
	select {
	case <-asked:
	case <-time.After(2 * JWKSFetchTimeout):
		t.Fatal("a token with an unknown kid did not make the service fetch the key set")
	}

	cases := []struct {
		name  string
		token string
		want  answer
	}{
		{"HS256NeverWaitsOnAFetch", hs256, answer{UserID: "7"}},
		{"KnownKidNeverWaitsOnAFetch", sign(t, jwa.RS256, known, nil), answer{UserID: "7"}},
		{"UnknownKidIsRefusedAtOnce", sign(t, jwa.RS256, privateKey(t, strangerRaw, "unknown-2"), nil), answer{Refusal: describe(errUnknownKey)}},
	}
	// Every case asks at once, so that each meets the fetch held up, not one that a case before
	// it outwaited.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), promptly)
	defer cancelDeadline()
	replies := make([]<-chan reply, len(cases))
	for i, tc := range cases {
		replies[i] = askInBackground(srv, tc.token)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := awaitPromptly(t, replies[i], deadline.Done()); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	logged := logs.len()
	release()
	logs.waitFor(t, logged, "JWKS: fetched")
	if got := p.fetches.Load() - before; got != 1 {
		t.Errorf("two unknown kids during one fetch caused %d fetches, want 1", got)
	}
}

// Any number of tokens with unknown kids make one background fetch between them, and a key the
// identity provider has published since the last fetch works as soon as that fetch has landed.
func TestUnknownKidsShareOneBackgroundFetch(t *testing.T) {
	oldRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	newRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	oldKey, newKey := privateKey(t, oldRaw, "rsa-1"), privateKey(t, newRaw, "rsa-2")
	p := newProvider(t)
	p.publish(oldKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newLogRecorder()
	v, err := NewVerifier(ctx, Config{JWKSURL: p.server.URL, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveMiddleware(t, v)
	p.publish(oldKey, newKey)
	newToken := sign(t, jwa.RS256, newKey, nil)

	asked, release := p.hold(t)
	forgetLastFetch(v)
	before := p.fetches.Load()
	const concurrent = 20
	replies := make([]<-chan reply, concurrent)
	for i := range replies {
		token := newToken
		if i > 0 {
			token = sign(t, jwa.RS256, privateKey(t, oldRaw, fmt.Sprintf("made-up-%d", i)), nil)
		}
		replies[i] = askInBackground(srv, token)
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), promptly)
	defer cancelDeadline()
	for _, r := range replies {
		if got, want := awaitPromptly(t, r, deadline.Done()), (answer{Refusal: describe(errUnknownKey)}); got != want {
			t.Errorf("while the fetch is under way, a token with an unknown kid: got %+v, want %+v", got, want)
		}
	}
	select {
	case <-asked:
	case <-time.After(2 * JWKSFetchTimeout):
		t.Fatal("tokens with unknown kids did not make the service fetch the key set")
	}
	logged := logs.len()
	release()
	logs.waitFor(t, logged, "JWKS: fetched")

	if got := p.fetches.Load() - before; got != 1 {
		t.Errorf("%d concurrent tokens with unknown kids caused %d fetches, want 1", concurrent, got)
	}
	if got, want := askPromptly(t, srv, newToken), (answer{UserID: "7"}); got != want {
		t.Errorf("once the fetch landed, a token signed with the new key: got %+v, want %+v", got, want)
	}
}

// The key set is fetched again on its own, without a token asking for it, so that a rotation
// takes effect even when no client has a token signed with the new key yet.
func TestPeriodicRefreshPicksUpANewKey(t *testing.T) {
	oldRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	newRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	oldKey, newKey := privateKey(t, oldRaw, "rsa-1"), privateKey(t, newRaw, "rsa-2")
	p := newProvider(t)
	p.publish(oldKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newLogRecorder()
	keys := newJWKSKeys(p.server.URL, slog.New(logs))
	if _, err := keys.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	p.publish(newKey)
	logged := logs.len()
	go keys.refreshLoop(ctx, time.Millisecond) // as if the refresh interval had passed
	logs.waitFor(t, logged, "JWKS: fetched")
	if _, ok := keys.current().LookupKeyID("rsa-2"); !ok {
		t.Error("after the periodic refresh, the newly published key is not in use")
	}
	if _, ok := keys.current().LookupKeyID("rsa-1"); ok {
		t.Error("after the periodic refresh, the retired key is still in use")
	}
}

// An identity provider's Cache-Control can make its keys be fetched sooner than every 15
// minutes, but not more than once a minute.
func TestRefreshDelay(t *testing.T) {
	cases := []struct {
		name         string
		cacheControl string
		want         time.Duration
	}{
		{"NoHeader", "", jwksRefreshInterval},
		{"ShorterMaxAge", "public, max-age=300", 5 * time.Minute},
		{"LongerMaxAge", "max-age=86400", jwksRefreshInterval},
		{"MaxAgeZero", "no-cache, max-age=0", UnknownKeyRefreshInterval},
		{"NameInCapitals", "Max-Age=600", 10 * time.Minute},
		{"MalformedMaxAge", "max-age=soon", jwksRefreshInterval},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := refreshDelay(tc.cacheControl); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// The key set comes from the configured URL only, over https (plain http only to a loopback
// host), in a body of reasonable size.
func TestJWKSTransport(t *testing.T) {
	rsaRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
	key := privateKey(t, rsaRaw, "rsa-1")
	public, _ := key.PublicKey()
	jwks, _ := json.Marshal(map[string]any{"keys": []any{public}})
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
	}
	// A server holding a valid key set, which a redirect must not make a source of keys.
	lured := atomic.Int64{}
	lure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lured.Add(1)
		w.Write(jwks)
	}))
	defer lure.Close()
	start := func(t *testing.T, h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}

	cases := []struct {
		name    string
		url     func(t *testing.T) string
		wantErr string // a part of NewVerifier's error, or "" for success
	}{
		{"RedirectToAnotherHostIsRefused", func(t *testing.T) string {
			return start(t, http.RedirectHandler(lure.URL+"/jwks.json", http.StatusFound))
		}, "redirect"},
		{"RedirectWithinTheHostIsFollowed", func(t *testing.T) string {
			mux := http.NewServeMux()
			mux.Handle("/old", http.RedirectHandler("/jwks.json", http.StatusMovedPermanently))
			mux.Handle("/jwks.json", serve(jwks))
			return start(t, mux) + "/old"
		}, ""},
		{"BodyOverTheCapIsRefused", func(t *testing.T) string {
			return start(t, serve(padded(jwks, MaxJWKSBytes+1)))
		}, "larger than"},
		{"BodyAtTheCapIsAccepted", func(t *testing.T) string {
			return start(t, serve(padded(jwks, MaxJWKSBytes)))
		}, ""},
		{"PlainHTTPToAnotherHostIsRefused", func(*testing.T) string {
			return "http://id.example.com/.well-known/jwks.json"
		}, "https"},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(ctx, Config{JWKSURL: tc.url(t)})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
	if n := lured.Load(); n != 0 {
		t.Errorf("the server a redirect named was asked %d times", n)
	}

	t.Run("PlainHTTPToAnotherHostIsRefusedBesideASecret", func(t *testing.T) {
		if _, err := NewVerifier(ctx, Config{Secret: secret, JWKSURL: "http://id.example.com/jwks.json"}); err == nil {
			t.Error("a JWKS URL over plain http to another host was accepted")
		}
	})

	t.Run("StartUpSaysWhereKeysComeFrom", func(t *testing.T) {
		url := start(t, serve(jwks))
		logs := newLogRecorder()
		if _, err := NewVerifier(ctx, Config{JWKSURL: url, Logger: slog.New(logs)}); err != nil {
			t.Fatal(err)
		}
		r := logs.waitFor(t, 0, "JWKS: signing keys come from")
		if r.Level != slog.LevelInfo || attr(r, "url") != url || attr(r, "max_bytes") != strconv.Itoa(MaxJWKSBytes) {
			t.Errorf("got %s %q url=%q max_bytes=%q, want INFO naming %s and %d", r.Level, r.Message, attr(r, "url"), attr(r, "max_bytes"), url, MaxJWKSBytes)
		}
		for _, rule := range []string{"https", "redirects", "bodies"} {
			if !strings.Contains(r.Message, rule) {
				t.Errorf("the start-up line %q does not state the rule on %s", r.Message, rule)
			}
		}
	})

	t.Run("OversizeRefreshKeepsTheLastGoodKeys", func(t *testing.T) {
		newRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
		newKey := privateKey(t, newRaw, "rsa-2")
		p := newProvider(t)
		p.publish(key)
		logs := newLogRecorder()
		v, err := NewVerifier(ctx, Config{JWKSURL: p.server.URL, Logger: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		srv := serveMiddleware(t, v)
		p.publish(key, newKey)
		p.setPadTo(MaxJWKSBytes + 1)
		forgetLastFetch(v)
		logged := logs.len()
		newToken := sign(t, jwa.RS256, newKey, nil)
		askPromptly(t, srv, newToken)
		if r := logs.waitFor(t, logged, "JWKS refresh failed"); !strings.Contains(attr(r, "err"), "larger than") {
			t.Errorf("the refresh failed for another reason: %s", attr(r, "err"))
		}
		if got, want := askPromptly(t, srv, newToken), (answer{Refusal: describe(errUnknownKey)}); got != want {
			t.Errorf("a key from an oversize key set: got %+v, want %+v", got, want)
		}
		if got, want := askPromptly(t, srv, sign(t, jwa.RS256, key, nil)), (answer{UserID: "7"}); got != want {
			t.Errorf("after an oversize key set, a token signed with the last good keys: got %+v, want %+v", got, want)
		}
	})
}
