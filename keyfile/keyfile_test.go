package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
)

func TestGenerateWriteRead(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.ES512} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := Generate(alg, 0)
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm != string(alg) || k.Use != "sig" {
				t.Fatalf("alg %q use %q", k.Algorithm, k.Use)
			}
			jkt, err := jws.Thumbprint(k)
			if err != nil {
				t.Fatal(err)
			}
			if k.KeyID != jkt {
				t.Fatalf("kid %q is not the thumbprint %q", k.KeyID, jkt)
			}
			dir := t.TempDir()
			priv, pub := filepath.Join(dir, "k.jwk"), filepath.Join(dir, "k.pub.jwk")
			if err := WritePrivate(priv, k); err != nil {
				t.Fatal(err)
			}
			if err := WritePublic(pub, k); err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(priv); fi.Mode().Perm() != 0o600 {
				t.Fatalf("private key file mode %v", fi.Mode().Perm())
			}
			got, err := ReadFile(priv)
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyID != k.KeyID || got.Algorithm != k.Algorithm {
				t.Fatalf("read back kid %q alg %q", got.KeyID, got.Algorithm)
			}
			b, _ := os.ReadFile(pub)
			if strings.Contains(string(b), `"d"`) {
				t.Fatalf("public file holds a private member: %s", b)
			}
			if _, err := ReadFile(pub); err == nil {
				t.Fatal("a public JWK was accepted as a private key")
			}
			if err := WritePrivate(priv, k); !errors.Is(err, os.ErrExist) {
				t.Fatalf("overwrite: got %v, want os.ErrExist", err)
			}
		})
	}
}

func TestGenerateRefusesWeakRSA(t *testing.T) {
	if _, err := Generate(jose.RS256, 1024); err == nil {
		t.Fatal("1024-bit RSA key was generated")
	}
	if _, err := Generate(jose.HS256, 0); err == nil {
		t.Fatal("HS256 key was generated")
	}
}

func TestParsePEM(t *testing.T) {
	rsaJWK, _ := Generate(jose.RS256, 2048)
	ecJWK, _ := Generate(jose.ES256, 0)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ecJWK.Key)
	sec1, _ := x509.MarshalECPrivateKey(ecJWK.Key.(*ecdsa.PrivateKey))
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaJWK.Key.(*rsa.PrivateKey))
	tests := []struct {
		name    string
		block   *pem.Block
		wantAlg string
		wantKID string
	}{
		{"PKCS8 EC", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}, "ES256", ecJWK.KeyID},
		{"SEC1 EC", &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}, "ES256", ecJWK.KeyID},
		{"PKCS1 RSA", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}, "PS256", rsaJWK.KeyID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(pem.EncodeToMemory(tt.block))
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm != tt.wantAlg || k.KeyID != tt.wantKID {
				t.Fatalf("alg %q kid %q, want %q %q", k.Algorithm, k.KeyID, tt.wantAlg, tt.wantKID)
			}
		})
	}
	if _, err := Parse([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); err == nil {
		t.Fatal("a certificate was accepted as a private key")
	}
	if _, err := Parse([]byte("hello")); err == nil {
		t.Fatal("garbage was accepted")
	}
}

func TestParseJWKRejectsAlgThatDoesNotFit(t *testing.T) {
	k, _ := Generate(jose.ES256, 0)
	b, _ := Marshal(k)
	bad := strings.Replace(string(b), `"ES256"`, `"RS256"`, 1)
	if _, err := Parse([]byte(bad)); err == nil {
		t.Fatal("EC key with alg RS256 was accepted")
	}
}

// TestKeyPolicy: a key file holds only a key Tillit and HelseID accept,
// RSA of 2048 to 4096 bits with e = 65537 or EC on P-256, P-384 or P-521,
// with or without an alg.
func TestKeyPolicy(t *testing.T) {
	// The private parts are never used: the policy looks at the public key.
	fake := func(bits, e int) *rsa.PrivateKey {
		return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: jwttest.RSAModulus(bits), E: e}}
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     crypto.Signer
		alg     jose.SignatureAlgorithm
		wantErr string
	}{
		{"RSA 4096", fake(4096, 65537), jose.PS256, ""},
		{"RSA 4097", fake(4097, 65537), jose.PS256, "RSA key of 4097 bits is longer than 4096"},
		{"RSA 4097 without alg", fake(4097, 65537), "", "RSA key of 4097 bits is longer than 4096"},
		{"RSA exponent 3", fake(2048, 3), jose.RS256, "RSA exponent 3 is not 65537"},
		{"RSA exponent 3 without alg", fake(2048, 3), "", "RSA exponent 3 is not 65537"},
		{"EC P-224 without alg", p224, "", "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromKey(tt.key, tt.alg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
	// Read from a file: a real key with e = 3, as PEM and as a JWK
	// without alg.
	e3 := e3Key(t)
	der, err := x509.MarshalPKCS8PrivateKey(e3)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: e3})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"PEM":             pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"JWK without alg": jwk,
	} {
		if _, err := Parse(data); err == nil || !strings.Contains(err.Error(), "RSA exponent 3 is not 65537") {
			t.Errorf("Parse of a %s key with e = 3: got %v", name, err)
		}
	}
	// Refused before any key is generated: 4104 bits would take seconds.
	if _, err := Generate(jose.PS256, 4104); err == nil || !strings.Contains(err.Error(), "at most 4096 bits") {
		t.Fatalf("Generate of 4104 bits: got %v", err)
	}
}

// e3Key is a real RSA key of 2048 bits with public exponent 3, which
// crypto/rsa does not generate but accepts.
func e3Key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	e, one := big.NewInt(3), big.NewInt(1)
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(new(big.Int).Sub(p, one), e).Sign() != 0 {
				return p
			}
		}
	}
	p, q := prime(), prime()
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 3},
		D:         new(big.Int).ModInverse(e, phi),
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	return k
}
