package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
)

// Errors. Every failure of Parse matches ErrMalformed or ErrAlgorithm; of
// Verify, ErrKey or ErrSignature.
var (
	ErrMalformed = errors.New("jws: not a well-formed compact JWS")
	ErrAlgorithm = errors.New("jws: alg is not allowed")
	ErrKey       = errors.New("jws: key does not fit alg")
	ErrSignature = errors.New("jws: signature is invalid")
)

// Header is the protected header, as far as Tillit reads it.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	// JWK is the raw jwk member (DPoP proofs); see ParseJWK.
	JWK json.RawMessage `json:"jwk"`
	// Crit, when present, names extensions the signer says must be
	// understood: none are, so a JWS with crit is refused (RFC 7515 §4.1.11).
	Crit json.RawMessage `json:"crit"`
}

var headerNames = NewNames("alg", "kid", "typ", "jwk", "crit")

// read fills h from a header's JSON; a repeated member it reads is refused.
func (h *Header) read(b []byte) error {
	return headerNames.Read(b, func(i int, name []byte, v Value) error {
		switch i {
		case 0:
			return StringMember(name, v, &h.Alg)
		case 1:
			return StringMember(name, v, &h.Kid)
		case 2:
			return StringMember(name, v, &h.Typ)
		case 3:
			h.JWK = v.Raw()
		case 4:
			h.Crit = v.Raw()
		}
		return nil
	})
}

// JWS is a parsed compact JWS whose signature is not yet verified.
type JWS struct {
	Header  Header
	Payload []byte
	alg     jose.SignatureAlgorithm
	input   string // the signing input: header.payload as sent
	sig     []byte
}

// Algorithm is the header's alg, one of the allowed.
func (j *JWS) Algorithm() jose.SignatureAlgorithm { return j.alg }

// Parse splits and decodes a compact JWS and checks its header: an alg from
// algs, no crit. It verifies nothing; call Verify with the right key.
func Parse(compact string, algs []jose.SignatureAlgorithm) (*JWS, error) {
	head, rest, ok := strings.Cut(compact, ".")
	if !ok {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	j := &JWS{input: compact[:len(head)+1+len(body)]}
	hb, err := decode(head)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err := j.Header.read(hb); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if j.Header.Crit != nil {
		return nil, fmt.Errorf("%w: crit extensions are not supported", ErrMalformed)
	}
	for _, a := range algs {
		if string(a) == j.Header.Alg {
			j.alg = a
		}
	}
	if j.alg == "" {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, j.Header.Alg)
	}
	if j.Payload, err = decode(body); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if j.sig, err = decode(sig); err != nil || len(j.sig) == 0 {
		return nil, fmt.Errorf("%w: signature", ErrMalformed)
	}
	return j, nil
}

// decode is strict base64url without padding: one encoding per value, so
// that a JWS cannot be changed without changing its signature input
// meaningfully, and a JWK's coordinates as sent are their canonical form
// (RFC 7638 thumbprints). Go's decoder skips CR and LF even in strict
// mode, so those are refused here.
func decode(s string) ([]byte, error) {
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return nil, errors.New("line break in base64url")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// Verify checks the signature with key, an *rsa.PublicKey or
// *ecdsa.PublicKey that fits the alg (CheckKey's rules: RSA of 2048 to
// 4096 bits with e = 65537, the curve the alg names). A key outside them
// is refused before any arithmetic is done with it.
func (j *JWS) Verify(key crypto.PublicKey) error {
	h, digest, err := hashInput(j.alg, j.input)
	if err != nil {
		return err
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		size, curve := ecParams(j.alg)
		if curve == nil || k.Curve != curve {
			return fmt.Errorf("%w: %s needs an EC key on %s", ErrKey, j.alg, curveName(curve))
		}
		if len(j.sig) != 2*size {
			return ErrSignature
		}
		r := new(big.Int).SetBytes(j.sig[:size])
		s := new(big.Int).SetBytes(j.sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return ErrSignature
		}
		return nil
	case *rsa.PublicKey:
		if err := checkRSA(k.N.BitLen(), k.E); err != nil {
			return fmt.Errorf("%w: %v", ErrKey, err)
		}
		switch j.alg {
		case jose.RS256, jose.RS384, jose.RS512:
			err = rsa.VerifyPKCS1v15(k, h, digest, j.sig)
		case jose.PS256, jose.PS384, jose.PS512:
			// The salt length is read from the signature, as go-jose
			// does: RFC 7518 §3.5 asks signers for the hash size, and
			// some libraries use another.
			err = rsa.VerifyPSS(k, h, digest, j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		default:
			return fmt.Errorf("%w: %s needs an EC key", ErrKey, j.alg)
		}
		if err != nil {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported key type %T", ErrKey, key)
}

// hashInput hashes the signing input with the alg's hash, with the
// package-level Sum functions: unlike a hash.Hash, they make no garbage.
func hashInput(alg jose.SignatureAlgorithm, input string) (crypto.Hash, []byte, error) {
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		sum := sha256.Sum256(readOnly(input))
		return crypto.SHA256, sum[:], nil
	case jose.RS384, jose.PS384, jose.ES384:
		sum := sha512.Sum384(readOnly(input))
		return crypto.SHA384, sum[:], nil
	case jose.RS512, jose.PS512, jose.ES512:
		sum := sha512.Sum512(readOnly(input))
		return crypto.SHA512, sum[:], nil
	}
	return 0, nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
}

func ecParams(alg jose.SignatureAlgorithm) (int, elliptic.Curve) {
	switch alg {
	case jose.ES256:
		return 32, elliptic.P256()
	case jose.ES384:
		return 48, elliptic.P384()
	case jose.ES512:
		return 66, elliptic.P521()
	}
	return 0, nil
}

func curveName(c elliptic.Curve) string {
	if c == nil {
		return "no curve"
	}
	return c.Params().Name
}

// readOnly is s's bytes without a copy, for hashing: an access token is a
// kilobyte or more, and a copy per hash is garbage the collector pays for
// on every request. Only for callees that read and do not keep the slice.
func readOnly(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
