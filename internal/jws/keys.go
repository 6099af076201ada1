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

// MinRSABits is the smallest RSA modulus accepted for any key Tillit
// registers or is shown: proof keys, client keys, key files.
const MinRSABits = 2048

// AlgorithmNames returns the names of algs, for metadata and WWW-Authenticate.
func AlgorithmNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// CheckKey reports whether pub is a key that may verify alg: an RSA key of at
// least MinRSABits for RS* and PS*, an EC key on the curve that alg names for
// ES*. go-jose checks the key type too, but not the size or the curve.
func CheckKey(alg jose.SignatureAlgorithm, pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		default:
			return fmt.Errorf("alg %s does not fit an RSA key", alg)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is shorter than %d", k.N.BitLen(), MinRSABits)
		}
		return nil
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
