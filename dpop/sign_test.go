package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// signRaw signs a JWS signing input with the raw primitives, so that tests
// can build proofs go-jose would refuse to build.
func signRaw(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, input []byte) []byte {
	t.Helper()
	h := sha256.Sum256(input)
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	case *rsa.PrivateKey:
		var sig []byte
		var err error
		if alg == jose.PS256 {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, h[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("unsupported key %T", key)
	return nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
