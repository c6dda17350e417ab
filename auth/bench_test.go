package auth

import (
	"context"
	"testing"

	"usergraph/internal/authtest"
)

// BenchmarkVerify is the token check every API request makes.
func BenchmarkVerify(b *testing.B) {
	v, err := NewVerifier(context.Background(), Config{Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	tok := authtest.Token(b, "7", AdminRole)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
