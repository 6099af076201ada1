package registry_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/registry"
)

func TestParseJWKS(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	one, _ := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"})
	private, _ := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: "p"})
	tests := []struct {
		name     string
		data     string
		wantKIDs int
		wantErr  string
	}{
		{name: "set", data: `{"keys":[` + string(one) + `]}`, wantKIDs: 1},
		{name: "one JWK", data: string(one), wantKIDs: 1},
		{name: "white space around", data: "\n " + string(one) + "\n", wantKIDs: 1},
		{name: "not JSON", data: `keys`, wantErr: "registry: jwks: not a JSON object"},
		{name: "no keys", data: `{"keys":[]}`, wantErr: "registry: jwks: has no keys"},
		{name: "keys null", data: `{}`, wantErr: "registry: jwks: has no keys"},
		{name: "key not an object", data: `{"keys":[1]}`, wantErr: "registry: jwks: key 0: not a JSON object"},
		{name: "private", data: `{"keys":[` + string(private) + `]}`, wantErr: `key 0 (kid "p"): holds private key material ("d")`},
		{name: "unknown kty", data: `{"keys":[{"kty":"XYZ","kid":"x"}]}`, wantErr: `key 0 (kid "x"): `},
		// One key policy for client keys: RSA of 2048 to 4096 bits with
		// e = 65537, EC on P-256, P-384 or P-521.
		{name: "RSA of 4096 bits", data: rsaKey("big", jwttest.RSAModulus(4096), 65537), wantKIDs: 1},
		{name: "RSA of 8192 bits", data: rsaKey("big", jwttest.RSAModulus(8192), 65537),
			wantErr: `key 0 (kid "big"): RSA key of 8192 bits is longer than 4096`},
		{name: "RSA of 1024 bits", data: rsaKey("small", jwttest.RSAModulus(1024), 65537),
			wantErr: `key 0 (kid "small"): RSA key of 1024 bits is shorter than 2048`},
		{name: "RSA exponent 3", data: rsaKey("e3", jwttest.RSAModulus(2048), 3),
			wantErr: `key 0 (kid "e3"): RSA exponent 3 is not 65537`},
		{name: "EC on P-224", data: p224Key(t), wantErr: `key 0 (kid "p224"): `},
		{name: "every problem", data: `{"keys":[1,` + string(private) + `,` + string(one) + `,` + string(one) + `]}`,
			wantErr: "key 0: not a JSON object\nregistry: jwks: key 1 (kid \"p\"): holds private key material (\"d\"); register only the public key\nregistry: jwks: key 3 (kid \"k1\"): kid is also used by key 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := registry.ParseJWKS([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseJWKS error = %v, want %q", err, tt.wantErr)
				}
				var je *registry.JWKSError
				if !errors.As(err, &je) {
					t.Errorf("error %v holds no *JWKSError", err)
				}
				if strings.Contains(err.Error(), `"d":`) {
					t.Errorf("error echoes private key material: %v", err)
				}
				return
			}
			if err != nil || len(keys) != tt.wantKIDs {
				t.Fatalf("ParseJWKS = %d keys, %v", len(keys), err)
			}
		})
	}
}

// TestMarshalJWKSCanonical checks that keys written by MarshalJWKS parse
// back to the same bytes, which is what makes Sync idempotent.
func TestMarshalJWKSCanonical(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey}}}, "", "  ")
	keys, err := registry.ParseJWKS(raw)
	if err != nil {
		t.Fatal(err)
	}
	first, err := registry.MarshalJWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	again, err := registry.ParseJWKS(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := registry.MarshalJWKS(again)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) || strings.ContainsAny(string(first), " \n") {
		t.Errorf("MarshalJWKS is not canonical:\n%s\n%s", first, second)
	}
	if !strings.Contains(string(first), `"kid":"`+keys[0].KeyID+`"`) {
		t.Errorf("MarshalJWKS dropped the kid: %s", first)
	}
	if _, err := registry.MarshalJWKS([]jose.JSONWebKey{{Key: k}}); err == nil {
		t.Error("MarshalJWKS wrote a private key")
	}
}

// FuzzParseJWKS: key sets will come from self-service uploads, so the
// parser must never panic, and whatever it accepts must be public keys that
// MarshalJWKS can write and ParseJWKS read back.
func FuzzParseJWKS(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	one, _ := json.Marshal(jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k"})
	f.Add(string(one))
	f.Add(`{"keys":[` + string(one) + `]}`)
	f.Add(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`)
	f.Add(`{"kty":"oct","k":"AA"}`)
	f.Fuzz(func(t *testing.T, data string) {
		keys, err := registry.ParseJWKS([]byte(data))
		if err != nil {
			return
		}
		out, err := registry.MarshalJWKS(keys)
		if err != nil {
			t.Fatalf("MarshalJWKS of accepted keys: %v", err)
		}
		if _, err := registry.ParseJWKS(out); err != nil {
			t.Fatalf("ParseJWKS of MarshalJWKS output: %v", err)
		}
	})
}

// rsaKey is a JWK with kid, modulus n and exponent e.
func rsaKey(kid string, n *big.Int, e int) string {
	k := jwttest.RSAJWK(n, e)
	k["kid"] = kid
	b, _ := json.Marshal(k)
	return string(b)
}

// p224Key is a JWK on P-224 with kid "p224".
func p224Key(t *testing.T) string {
	k := jwttest.P224JWK(t)
	k["kid"] = "p224"
	b, _ := json.Marshal(k)
	return string(b)
}
