package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithms are the asymmetric JWS algorithms HelseID accepts for DPoP
// proofs and client assertions (dpop_signing_alg_values_supported). Never
// "none", never HS*: a symmetric algorithm would let anyone who knows the
// public key forge a signature.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// The key policy for every key Tillit registers or is shown: proof keys,
// client keys, key files. RSA keys have 2048 to 4096 bits and the public
// exponent 65537; EC keys are on P-256, P-384 or P-521. The upper bounds
// matter as much as the lower: the cost of verifying an RSA signature grows
// with the modulus and the exponent, and a DPoP proof brings its own key,
// so a 20,000-bit key with exponent 2^31-1 (which fits in a proof) would
// cost a verifier some 25 ms instead of 0.1 ms per request.
const (
	MinRSABits  = 2048
	MaxRSABits  = 4096
	RSAExponent = 65537
)

// AlgorithmNames returns the names of algs, for metadata and WWW-Authenticate.
func AlgorithmNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// CheckPublicKey reports whether pub is a key the policy allows at all,
// whatever the alg: RSA of MinRSABits to MaxRSABits bits with exponent
// RSAExponent, or EC on P-256, P-384 or P-521.
func CheckPublicKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return checkRSA(k.N.BitLen(), k.E)
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("EC curve %s is not P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// checkRSA is the policy for an RSA key with a modulus of bits bits and
// public exponent e.
func checkRSA(bits, e int) error {
	switch {
	case bits < MinRSABits:
		return fmt.Errorf("RSA key of %d bits is shorter than %d", bits, MinRSABits)
	case bits > MaxRSABits:
		return fmt.Errorf("RSA key of %d bits is longer than %d", bits, MaxRSABits)
	case e != RSAExponent:
		return fmt.Errorf("RSA exponent %d is not %d", e, RSAExponent)
	}
	return nil
}

// CheckKey reports whether pub is a key that may verify alg: an RSA key that
// CheckPublicKey allows for RS* and PS*, an EC key on the curve that alg
// names for ES*. go-jose checks the key type too, but not the size, the
// exponent or the curve.
func CheckKey(alg jose.SignatureAlgorithm, pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		default:
			return fmt.Errorf("alg %s does not fit an RSA key", alg)
		}
		return checkRSA(k.N.BitLen(), k.E)
	case *ecdsa.PublicKey:
		want := map[jose.SignatureAlgorithm]elliptic.Curve{
			jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521(),
		}[alg]
		if want == nil {
			return fmt.Errorf("alg %s does not fit an EC key", alg)
		}
		if k.Curve != want {
			return fmt.Errorf("alg %s needs curve %s, key is on %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// DefaultAlgorithm is the algorithm a key signs with when none is given:
// PS256 for RSA (HelseID's recommendation), ES256/384/512 by curve for EC.
func DefaultAlgorithm(pub any) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return jose.PS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the public part of jwk,
// base64url without padding: the value of cnf.jkt (RFC 9449 §6.1) and the
// kid of key files. Only the required members count, so alg, kid or use in
// the JWK do not change it.
func Thumbprint(jwk *jose.JSONWebKey) (string, error) {
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// NewJTI returns 128 random bits, base64url: a jti nobody can predict.
func NewJTI() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("jws: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
