package keyfile

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
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
