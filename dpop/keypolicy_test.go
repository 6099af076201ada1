package dpop

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/jwttest"
)

// BenchmarkRefuseLargeKey is what a proof whose jwk is an RSA key of
// about 20,000 bits with exponent 2^31-1 costs the verifier: such a key
// fits the 8 KiB proof limit, and verifying a signature with it takes tens
// of milliseconds. The key policy refuses it before that.
func BenchmarkRefuseLargeKey(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	const url = "https://api.example.no/files"
	sig := make([]byte, 2500)
	rand.Read(sig)
	proof := jwttest.JWT{
		Header:    map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": jwttest.RSAJWK(jwttest.RSAModulus(20000), 1<<31-1)},
		Claims:    map[string]any{"jti": "j", "htm": "GET", "htu": url, "iat": now.Unix()},
		Signature: base64.RawURLEncoding.EncodeToString(sig),
	}.Sign(b)
	if len(proof) > maxProofSize {
		b.Fatalf("proof of %d bytes is over the limit", len(proof))
	}
	var v Verifier
	for b.Loop() {
		_, err := v.Verify(proof, Request{Method: "GET", URL: url, Now: now})
		if err == nil || !strings.Contains(err.Error(), "DPoP proof") {
			b.Fatalf("got %v", err)
		}
	}
}
