package keys

import (
	"crypto"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Signer signs access tokens with one key. It is safe for concurrent use.
type Signer struct {
	kid string
	alg jose.SignatureAlgorithm
	s   jose.Signer
}

func newSigner(key crypto.Signer, alg jose.SignatureAlgorithm, kid string) (*Signer, error) {
	// RFC 9068 §2.1: typ "at+jwt" keeps an access token from being taken
	// for an ID token or any other JWT.
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", kid, err)
	}
	return &Signer{kid: kid, alg: alg, s: s}, nil
}

// KeyID is the kid of the key (its RFC 7638 thumbprint).
func (s *Signer) KeyID() string { return s.kid }

// Algorithm is the JWS algorithm.
func (s *Signer) Algorithm() jose.SignatureAlgorithm { return s.alg }

// Sign returns the compact JWS of payload with header typ, alg and kid.
func (s *Signer) Sign(payload []byte) (string, error) {
	obj, err := s.s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return obj.CompactSerialize()
}
