package authtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// The tokens that tests rely on being valid are valid with Secret, and carry what their names
// promise: a test that fails on a token should fail because the service refused it, not because
// the token was not what the test meant.
func TestTokensVerifyWithTheSecret(t *testing.T) {
	cases := []struct {
		name      string
		token     string
		wantSub   string
		wantRoles any // nil when the token must carry no roles claim
	}{
		{"TokenWithRoles", Token(t, "7", "admin"), "7", []any{"admin"}},
		{"TokenWithoutRolesHasNoRolesClaim", Token(t, "8"), "8", nil},
		{"SignClaimsKeepsExactlyTheClaims", SignClaims(t, map[string]any{"sub": "9", "roles": []string{"user"}}), "9", []any{"user"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := jwt.ParseString(tc.token, jwt.WithKey(jwa.HS256, []byte(Secret)), jwt.WithValidate(true))
			if err != nil {
				t.Fatalf("not valid with Secret: %v", err)
			}
			if got := tok.Subject(); got != tc.wantSub {
				t.Errorf("sub: got %q, want %q", got, tc.wantSub)
			}
			roles, _ := tok.Get(RolesClaim)
			if !reflect.DeepEqual(roles, tc.wantRoles) {
				t.Errorf("%s: got %#v, want %#v", RolesClaim, roles, tc.wantRoles)
			}
		})
	}
}

// A forged token keeps the header it was given, however much it lies, and the signature it was
// given, however little.
func TestForgedTokensKeepWhatTheyWereGiven(t *testing.T) {
	claims := map[string]any{"sub": "7"}
	hs256 := HMAC(sha256.New, []byte(Secret))
	cases := []struct {
		name       string
		token      string
		wantHeader map[string]any
		wantSigner func(signingInput []byte) []byte // nil for an empty signature
	}{
		{"HeaderNamesAnotherAlgorithm", Forge(t, map[string]any{"alg": "HS512"}, claims, hs256), map[string]any{"alg": "HS512"}, hs256},
		{"UnsignedHasAnEmptySignature", Unsigned(t, map[string]any{"alg": "none"}, claims), map[string]any{"alg": "none"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts := strings.Split(tc.token, ".")
			if len(parts) != 3 {
				t.Fatalf("got %d parts, want 3: %q", len(parts), tc.token)
			}
			var header map[string]any
			if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil {
				t.Fatalf("the header is not base64url JSON: %q", parts[0])
			}
			if !reflect.DeepEqual(header, tc.wantHeader) {
				t.Errorf("header: got %v, want %v", header, tc.wantHeader)
			}
			var want []byte
			if tc.wantSigner != nil {
				want = tc.wantSigner([]byte(parts[0] + "." + parts[1]))
			}
			if got, _ := base64.RawURLEncoding.DecodeString(parts[2]); string(got) != string(want) {
				t.Errorf("signature: got %x, want %x", got, want)
			}
		})
	}
}
