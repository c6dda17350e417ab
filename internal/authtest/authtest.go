// Package authtest makes bearer tokens for tests: the ones the service accepts, signed with the
// test secret, and the ones an attacker sends.
//
// It does not use package auth, so that auth's own tests can use it, and so that a token made here
// owes nothing to the code that verifies it.
package authtest

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"hash"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Secret is the HS256 key that test servers and verifiers are configured with.
const Secret = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

// RolesClaim is the claim under which Token puts the roles.
const RolesClaim = "roles"

// Token returns an HS256 token signed with Secret for subject, issued now, valid for an hour, with
// these roles under RolesClaim; with no roles it has no such claim, as a token for an ordinary
// user from most identity providers has none.
func Token(t testing.TB, subject string, roles ...string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"sub": subject, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if len(roles) > 0 {
		claims[RolesClaim] = roles
	}
	return SignClaims(t, claims)
}

// SignClaims returns an HS256 token signed with Secret that holds exactly these claims, for the
// tokens Token does not make: expired ones, ones without a subject, ones with an issuer.
func SignClaims(t testing.TB, claims map[string]any) string {
	t.Helper()
	return Mint(t, jwa.HS256, []byte(Secret), claims, nil)
}

// Mint returns a token that holds exactly these claims, signed with key by alg, with headers added
// to its protected header: a token from an identity provider's key, or one signed with a key
// nobody should accept, or one whose header points elsewhere (kid, jku, x5u).
func Mint(t testing.TB, alg jwa.SignatureAlgorithm, key any, claims, headers map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatalf("claim %q: %v", k, err)
		}
	}
	h := jws.NewHeaders()
	for k, v := range headers {
		if err := h.Set(k, v); err != nil {
			t.Fatalf("header %q: %v", k, err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// Forge builds a compact token by hand, with exactly this header and these claims, and the
// signature sign computes over its signing input, or an empty one when sign is nil. A JOSE library
// refuses to make such tokens: a header that names another algorithm than the one that signed it,
// "alg": "none" with a signature.
func Forge(t testing.TB, header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(mustJSON(t, header)) + "." + enc.EncodeToString(mustJSON(t, claims))
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig)
}

// Unsigned builds a compact token with this header and these claims and an empty signature, as an
// "alg": "none" token has.
func Unsigned(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	return Forge(t, header, claims, nil)
}

// HMAC returns a sign function for Forge that computes the HMAC of the signing input with newHash
// and key, whatever algorithm the header names.
func HMAC(newHash func() hash.Hash, key []byte) func(signingInput []byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(newHash, key)
		m.Write(input)
		return m.Sum(nil)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
