package auth

import (
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// TokenRequest describes a token to sign.
type TokenRequest struct {
	Subject string
	Roles   []string
	TTL     time.Duration
}

// Sign returns an HS256 token, signed with cfg.Secret, that a Verifier with the same Config accepts: the subject, the roles
// under cfg.RolesClaim, iat now, exp after the TTL, and cfg's issuer and audience if set. A RolesClaim that is a URL
// ("https://example.com/roles") names one claim; any other dotted name is a path into nested objects.
func Sign(cfg Config, req TokenRequest) (string, error) {
	if len(cfg.Secret) < MinSecretLength {
		return "", fmt.Errorf("the HS256 secret must be at least %d bytes long", MinSecretLength)
	}
	if req.Subject == "" {
		return "", fmt.Errorf("a token needs a subject")
	}
	if req.TTL <= 0 {
		return "", fmt.Errorf("a token's lifetime must be positive")
	}
	now := time.Now()
	b := jwt.NewBuilder().Subject(req.Subject).IssuedAt(now).Expiration(now.Add(req.TTL))
	if cfg.Issuer != "" {
		b = b.Issuer(cfg.Issuer)
	}
	if cfg.Audience != "" {
		b = b.Audience([]string{cfg.Audience})
	}
	if req.Roles != nil {
		rolesClaim := cfg.RolesClaim
		if rolesClaim == "" {
			rolesClaim = "roles"
		}
		b = withRoles(b, rolesClaim, req.Roles)
	}
	tok, err := b.Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, cfg.Secret))
	if err != nil {
		return "", err
	}
	return string(signed), nil
}

// withRoles puts roles under the claim named name, as an identity provider would: a namespaced
// claim, named by a URL, whole, since its dots are part of its name; any other dotted name as a
// path into nested objects ("realm_access.roles", as Keycloak does). A Verifier reads both.
func withRoles(b *jwt.Builder, name string, roles []string) *jwt.Builder {
	if strings.Contains(name, "://") {
		return b.Claim(name, roles)
	}
	path := strings.Split(name, ".")
	var value any = roles
	for i := len(path) - 1; i > 0; i-- {
		value = map[string]any{path[i]: value}
	}
	return b.Claim(path[0], value)
}
