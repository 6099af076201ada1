package keys

import (
	"crypto"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Signer signs access tokens and ID tokens with one key. It is safe for
// concurrent use.
type Signer struct {
	kid string
	alg jose.SignatureAlgorithm
	s   jose.Signer
	id  jose.Signer // typ "JWT", for ID tokens
}

func newSigner(key crypto.Signer, alg jose.SignatureAlgorithm, kid string) (*Signer, error) {
	// RFC 9068 §2.1: typ "at+jwt" keeps an access token from being taken
	// for an ID token or any other JWT.
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", kid, err)
	}
	// An ID token must not pass for an access token at an API that checks
	// typ, so it gets the plain "JWT" that OIDC clients expect.
	id, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("keys: ID token signer for %s: %w", kid, err)
	}
	return &Signer{kid: kid, alg: alg, s: s, id: id}, nil
}

// KeyID is the kid of the key (its RFC 7638 thumbprint).
func (s *Signer) KeyID() string { return s.kid }

// Algorithm is the JWS algorithm.
func (s *Signer) Algorithm() jose.SignatureAlgorithm { return s.alg }

// Sign returns the compact JWS of an access token's payload with header
// typ "at+jwt", alg and kid.
func (s *Signer) Sign(payload []byte) (string, error) {
	obj, err := s.s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// SignIDToken returns the compact JWS of an ID token's payload with header
// typ "JWT", alg and kid.
func (s *Signer) SignIDToken(payload []byte) (string, error) {
	obj, err := s.id.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign ID token: %w", err)
	}
	return obj.CompactSerialize()
}
