package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
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
}

func newProvider(t *testing.T) *provider {
	p := &provider{t: t}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
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
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(p.server.Close)
	return p
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
	tok, err := jwt.NewBuilder().Subject("7").IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	for k, v := range headers {
		h.Set(k, v)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
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
	v, err := NewVerifier(ctx, Config{JWKSURL: p.server.URL})
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
		v.jwks.lastRefresh = time.Now().Add(-2 * UnknownKeyRefreshInterval)
		before := p.fetches.Load()
		for i := range 50 {
			tok := sign(t, jwa.RS256, privateKey(t, strangerRaw, "made-up-"+string(rune('a'+i%26))), nil)
			if _, err := v.Verify(context.Background(), tok); err == nil {
				t.Fatal("a token with a made-up kid was accepted")
			}
		}
		if got := p.fetches.Load() - before; got != 1 {
			t.Errorf("50 tokens with unknown kids caused %d fetches, want 1", got)
		}
	})

	t.Run("KeyRotation", func(t *testing.T) {
		newRaw, _ := rsa.GenerateKey(rand.Reader, 2048)
		newKey := privateKey(t, newRaw, "rsa-2")
		oldToken, newToken := sign(t, jwa.RS256, rsaKey, nil), sign(t, jwa.RS256, newKey, nil)
		p.publish(newKey, ecKey, edKey) // rsa-1 retired, rsa-2 introduced
		v.jwks.lastRefresh = time.Now().Add(-2 * UnknownKeyRefreshInterval)
		before := p.fetches.Load()
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
		v.jwks.lastRefresh = time.Now().Add(-2 * UnknownKeyRefreshInterval)
		before := p.fetches.Load()
		if _, err := v.Verify(context.Background(), sign(t, jwa.RS256, privateKey(t, strangerRaw, "rsa-3"), nil)); err == nil {
			t.Error("an unknown kid was accepted")
		}
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
		tok, _ := Sign(Config{Secret: secret}, TokenRequest{Subject: "7", TTL: time.Minute})
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
		hs, _ := Sign(Config{Secret: secret}, TokenRequest{Subject: "7", TTL: time.Minute})
		for name, tok := range map[string]string{"HS256": hs, "EdDSA": sign(t, jwa.EdDSA, key, nil)} {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}
