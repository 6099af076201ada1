package dpop

import (
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

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

// TestVerifyJKT: with Request.JKT, a proof is refused for its key before
// its signature is looked at, and passes with the bound key.
func TestVerifyJKT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const url = "https://api.example.no/files"
	key := mustEC(t, elliptic.P256())
	s, err := NewSigner(key, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.Proof("GET", url, ProofOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 512)
	rand.Read(sig)
	costly := jwttest.JWT{
		Header:    map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": jwttest.RSAJWK(jwttest.RSAModulus(4096), 65537)},
		Claims:    map[string]any{"jti": "j", "htm": "GET", "htu": url, "iat": now.Unix()},
		Signature: base64.RawURLEncoding.EncodeToString(sig),
	}.Sign(t)
	tests := []struct {
		name, proof, jkt string
		want             string // substring of the error; "" for none
	}{
		{"bound key", good, s.Thumbprint(), ""},
		{"no JKT checks no binding", good, "", ""},
		{"another key", good, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "another key than the access token is bound to"},
		{"another key with a bad signature", costly, s.Thumbprint(), "another key than the access token is bound to"},
		{"without JKT the signature decides", costly, "", "signature is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Verifier
			_, err := v.Verify(tt.proof, Request{Method: "GET", URL: url, JKT: tt.jkt, Now: now})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (!errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an invalid proof saying %q", err, tt.want)
			}
		})
	}
}
