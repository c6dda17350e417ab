package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerify is the token check every API request makes.
func BenchmarkVerify(b *testing.B) {
	v, err := NewVerifier(context.Background(), Config{Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := Sign(Config{Secret: secret}, TokenRequest{Subject: "7", Roles: []string{"admin"}, TTL: time.Hour})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
