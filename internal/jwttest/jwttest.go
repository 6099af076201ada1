// Package jwttest forges JWTs for tests: any header, any claims, signed with
// any key and any algorithm — including the ones a JOSE library refuses to
// produce (alg "none", HMAC keyed with a public key), so that every
// rejection path can be exercised with real signatures.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// JWT is a token to forge. Header["alg"] decides how it is signed unless
// Signature is set.
type JWT struct {
	Header map[string]any
	// Claims is marshalled as is; a nil map gives "null".
	Claims any
	Key    crypto.Signer
	// Signature, when not empty, replaces the computed one (base64url).
	Signature string
}

// Sign returns the compact serialisation.
func (j JWT) Sign(t testing.TB) string {
	t.Helper()
	input := Segment(t, j.Header) + "." + Segment(t, j.Claims)
	if j.Signature != "" {
		return input + "." + j.Signature
	}
	alg, _ := j.Header["alg"].(string)
	sig := SignRaw(t, j.Key, alg, []byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Segment is base64url(JSON(v)).
func Segment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignRaw signs a JWS signing input with alg using the primitives directly.
// "none" gives an empty signature; HS256 uses the JSON of the key's public
// JWK as the HMAC secret (the algorithm-confusion attack).
func SignRaw(t testing.TB, key crypto.Signer, alg string, input []byte) []byte {
	t.Helper()
	if len(alg) < 5 { // "none", "", or nothing a key can sign
		return nil
	}
	var h crypto.Hash
	switch alg[len(alg)-3:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	if alg[:2] == "HS" {
		pub, err := json.Marshal(jose.JSONWebKey{Key: key.Public()})
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(hashFunc(h), pub)
		m.Write(input)
		return m.Sum(nil)
	}
	d := h.New()
	d.Write(input)
	digest := d.Sum(nil)
	var sig []byte
	var err error
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		var r, s interface{ FillBytes([]byte) []byte }
		rr, ss, e := ecdsa.Sign(rand.Reader, k, digest)
		r, s, err = rr, ss, e
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case *rsa.PrivateKey:
		if alg[:2] == "PS" {
			sig, err = rsa.SignPSS(rand.Reader, k, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, h, digest)
		}
	default:
		t.Fatalf("jwttest: unsupported key %T", key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func hashFunc(h crypto.Hash) func() hash.Hash {
	switch h {
	case crypto.SHA384:
		return sha512.New384
	case crypto.SHA512:
		return sha512.New
	}
	return sha256.New
}

// RSAModulus is an odd number of exactly bits bits: the modulus of an RSA
// key that a check must refuse before any signature is verified with it,
// so it need not be a product of two primes.
func RSAModulus(bits int) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
	if err != nil {
		panic(err)
	}
	n.SetBit(n, bits-1, 1)
	return n.SetBit(n, 0, 1)
}

// RSAJWK is a public RSA JWK with any modulus and exponent, including
// those a JOSE library refuses to write.
func RSAJWK(n *big.Int, e int) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]string{"kty": "RSA", "n": b64(n.Bytes()), "e": b64(big.NewInt(int64(e)).Bytes())}
}

// P224JWK is a public EC JWK on P-224, a curve HelseID does not allow.
func P224JWK(t testing.TB) map[string]string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]string{"kty": "EC", "crv": "P-224", "x": b64(k.X.FillBytes(make([]byte, 28))), "y": b64(k.Y.FillBytes(make([]byte, 28)))}
}

// Claims reads a JWT's payload without verifying it: tests that check the
// signature do so separately.
func Claims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
