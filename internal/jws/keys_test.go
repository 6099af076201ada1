package jws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jwttest"
)

// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
func TestRFC7638Thumbprint(t *testing.T) {
	const jwkJSON = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	var k jose.JSONWebKey
	if err := json.Unmarshal([]byte(jwkJSON), &k); err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(&k)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint %q, want %q", got, want)
	}
}

// fakeRSA is an RSA public key of exactly bits bits with exponent e,
// whose private key nobody knows.
func fakeRSA(bits, e int) *rsa.PublicKey {
	return &rsa.PublicKey{N: jwttest.RSAModulus(bits), E: e}
}

// rsaJWK is the public JWK of k, written by hand so that exponents go-jose
// would not write are possible.
func rsaJWK(k *rsa.PublicKey) []byte {
	e := big.NewInt(int64(k.E)).Bytes()
	return []byte(`{"kty":"RSA","n":"` + b64(k.N.Bytes()) + `","e":"` + b64(e) + `"}`)
}

// TestCheckKey is the key policy for every key Tillit registers or is
// shown: RSA of 2048 to 4096 bits with e = 65537 for RS* and PS*, EC on the
// curve the alg names for ES*; nothing else.
func TestCheckKey(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		alg     jose.SignatureAlgorithm
		key     any
		wantErr string // substring; "" for none
	}{
		{"RSA 2048", jose.PS256, &rsa2k.PublicKey, ""},
		{"RSA 4096", jose.RS512, fakeRSA(4096, 65537), ""},
		{"EC P-256", jose.ES256, &ec256.PublicKey, ""},
		{"EC P-521", jose.ES512, &ec521.PublicKey, ""},
		{"RSA 1024", jose.RS256, &rsaWeak.PublicKey, "shorter than 2048"},
		{"RSA 4097", jose.RS256, fakeRSA(4097, 65537), "longer than 4096"},
		{"RSA 16384", jose.PS256, fakeRSA(16384, 65537), "longer than 4096"},
		{"exponent 3", jose.RS256, fakeRSA(2048, 3), "exponent 3 is not 65537"},
		{"exponent 2^31-1", jose.RS256, fakeRSA(2048, 1<<31-1), "exponent 2147483647 is not 65537"},
		{"EC P-224", jose.ES256, &p224.PublicKey, "needs curve P-256"},
		{"EC key for RS256", jose.RS256, &ec256.PublicKey, "does not fit an EC key"},
		{"RSA key for ES256", jose.ES256, &rsa2k.PublicKey, "does not fit an RSA key"},
		{"EC P-384 for ES256", jose.ES256, &ec384.PublicKey, "needs curve P-256"},
		{"private key", jose.ES256, ec256, "unsupported key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKey(tt.alg, tt.key)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}
