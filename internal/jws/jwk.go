package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// ErrJWK is matched by every refusal of ParseJWK.
var ErrJWK = errors.New("jws: unusable jwk")

// ErrPrivateJWK is a JWK that holds private key material, where only a
// public key belongs. It matches ErrJWK.
var ErrPrivateJWK = fmt.Errorf("%w: it holds a private key", ErrJWK)

// jwk holds the members ParseJWK reads.
type jwk struct {
	Kty, Crv, X, Y, N, E string
}

// jwkNames are the members ParseJWK reads, then those of private and
// symmetric keys (RFC 7518 §6.2.2, §6.3.2, §6.4.1): a JWK with any of the
// latter is refused, whatever the value but null.
var jwkNames = NewNames("kty", "crv", "x", "y", "n", "e", "d", "p", "q", "dp", "dq", "qi", "oth", "k")

func (k *jwk) read(raw []byte) error {
	public := [...]*string{&k.Kty, &k.Crv, &k.X, &k.Y, &k.N, &k.E}
	return jwkNames.Read(raw, func(i int, name []byte, v Value) error {
		switch {
		case i < 0:
			return nil
		case i < len(public):
			return StringMember(name, v, public[i])
		case v.Kind() != KindNull:
			return ErrPrivateJWK
		}
		return nil
	})
}

// ParseJWK reads a public key the key policy allows (CheckPublicKey: EC on
// P-256, P-384 or P-521, RSA of 2048 to 4096 bits with e = 65537) from a
// JWK and returns it with its RFC 7638 SHA-256 thumbprint, base64url. The
// point of an EC key is checked to be on its curve. Any private member is
// refused, as is a symmetric key. Nothing costly is done with a key before
// the policy has allowed it.
func ParseJWK(raw []byte) (crypto.PublicKey, string, error) {
	var k jwk
	switch err := k.read(raw); {
	case errors.Is(err, ErrPrivateJWK):
		return nil, "", err
	case err != nil:
		return nil, "", fmt.Errorf("%w: %v", ErrJWK, err)
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
		// no whitespace. Strictly decoded to the curve's exact size, x and
		// y as sent are already canonical.
		tp := `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
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
		if err := checkRSA(n.BitLen(), int(e.Int64())); err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrJWK, err)
		}
		// Leading zero bytes are not part of the thumbprint's integers.
		// Without them, the strictly decoded text is already canonical.
		ns, es := k.N, k.E
		if nb[0] == 0 {
			ns = b64(n.Bytes())
		}
		if eb[0] == 0 {
			es = b64(e.Bytes())
		}
		tp := `{"e":"` + es + `","kty":"RSA","n":"` + ns + `"}`
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, thumbprint(tp), nil
	case "":
		return nil, "", fmt.Errorf("%w: no kty", ErrJWK)
	}
	return nil, "", fmt.Errorf("%w: kty %q", ErrJWK, k.Kty)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func thumbprint(canonical string) string {
	sum := sha256.Sum256(readOnly(canonical))
	return b64(sum[:])
}
