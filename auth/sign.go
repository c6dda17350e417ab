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
// under cfg.RolesClaim, iat now, exp after the TTL, and cfg's issuer and audience if set.
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
		// A dotted claim name is a path into nested objects, as Verify reads it.
		path := strings.Split(rolesClaim, ".")
		var value any = req.Roles
		for i := len(path) - 1; i > 0; i-- {
			value = map[string]any{path[i]: value}
		}
		b = b.Claim(path[0], value)
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
