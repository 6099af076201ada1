package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// ErrJWK is matched by every refusal of ParseJWK.
var ErrJWK = errors.New("jws: unusable jwk")

// ErrPrivateJWK is a JWK that holds private key material, where only a
// public key belongs. It matches ErrJWK.
var ErrPrivateJWK = fmt.Errorf("%w: it holds a private key", ErrJWK)

// jwk holds the members ParseJWK reads; private members are read only to
// refuse them.
type jwk struct {
	Kty string  `json:"kty"`
	Crv string  `json:"crv"`
	X   string  `json:"x"`
	Y   string  `json:"y"`
	N   string  `json:"n"`
	E   string  `json:"e"`
	D   *string `json:"d"`
	P   *string `json:"p"`
	Q   *string `json:"q"`
	DP  *string `json:"dp"`
	DQ  *string `json:"dq"`
	QI  *string `json:"qi"`
	K   *string `json:"k"`
}

// ParseJWK reads a public EC (P-256, P-384, P-521) or RSA (at least 2048
// bits) key from a JWK and returns it with its RFC 7638 SHA-256 thumbprint,
// base64url. The point of an EC key is checked to be on its curve. Any
// private member is refused, as is a symmetric key.
func ParseJWK(raw []byte) (crypto.PublicKey, string, error) {
	var k jwk
	if !isObject(raw) {
		return nil, "", fmt.Errorf("%w: not a JSON object", ErrJWK)
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrJWK, err)
	}
	if k.D != nil || k.P != nil || k.Q != nil || k.DP != nil || k.DQ != nil || k.QI != nil || k.K != nil {
		return nil, "", ErrPrivateJWK
	}
	switch k.Kty {
	case "EC":
		var curve elliptic.Curve
		var size int
		switch k.Crv {
		case "P-256":
			curve, size = elliptic.P256(), 32
		case "P-384":
			curve, size = elliptic.P384(), 48
		case "P-521":
			curve, size = elliptic.P521(), 66
		default:
			return nil, "", fmt.Errorf("%w: curve %q", ErrJWK, k.Crv)
		}
		x, err := decode(k.X)
		if err != nil || len(x) != size {
			return nil, "", fmt.Errorf("%w: x is not %d bytes of base64url", ErrJWK, size)
		}
		y, err := decode(k.Y)
		if err != nil || len(y) != size {
			return nil, "", fmt.Errorf("%w: y is not %d bytes of base64url", ErrJWK, size)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, "", fmt.Errorf("%w: the point is not on %s", ErrJWK, k.Crv)
		}
		// RFC 7638 §3.2: the required members in lexicographic order,
		// no whitespace. The values are re-encoded, so they are canonical.
		tp := `{"crv":"` + k.Crv + `","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`
		return pub, thumbprint(tp), nil
	case "RSA":
		nb, err := decode(k.N)
		if err != nil || len(nb) == 0 {
			return nil, "", fmt.Errorf("%w: n is not base64url", ErrJWK)
		}
		eb, err := decode(k.E)
		if err != nil || len(eb) == 0 || len(eb) > 4 {
			return nil, "", fmt.Errorf("%w: e is not a small base64url integer", ErrJWK)
		}
		n := new(big.Int).SetBytes(nb)
		e := new(big.Int).SetBytes(eb)
		if n.BitLen() < 2048 {
			return nil, "", fmt.Errorf("%w: RSA key of %d bits is shorter than 2048", ErrJWK, n.BitLen())
		}
		if e.Int64() < 3 || e.Int64()%2 == 0 || e.Int64() > 1<<31-1 {
			return nil, "", fmt.Errorf("%w: RSA exponent %d", ErrJWK, e.Int64())
		}
		// Leading zero bytes are not part of the thumbprint's integers.
		tp := `{"e":"` + b64(e.Bytes()) + `","kty":"RSA","n":"` + b64(n.Bytes()) + `"}`
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, thumbprint(tp), nil
	case "":
		return nil, "", fmt.Errorf("%w: no kty", ErrJWK)
	}
	return nil, "", fmt.Errorf("%w: kty %q", ErrJWK, k.Kty)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func thumbprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return b64(sum[:])
}
