package dpop

import (
	"crypto"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
)

// Signer makes DPoP proofs with one key. It is safe for concurrent use.
type Signer struct {
	alg    jose.SignatureAlgorithm
	jkt    string
	signer jose.Signer
}

// NewSigner returns a Signer for key (an *rsa.PrivateKey or
// *ecdsa.PrivateKey) and alg; an empty alg picks PS256 for RSA and, for
// EC, the ES algorithm of the key's curve.
func NewSigner(key crypto.Signer, alg jose.SignatureAlgorithm) (*Signer, error) {
	if alg == "" {
		a, err := jws.DefaultAlgorithm(key.Public())
		if err != nil {
			return nil, fmt.Errorf("dpop: %w", err)
		}
		alg = a
	}
	if err := jws.CheckKey(alg, key.Public()); err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	pub := jose.JSONWebKey{Key: key.Public()}
	jkt, err := jws.Thumbprint(&pub)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	// EmbedJWK puts the public key, and only it, in the jwk header
	// (RFC 9449 §4.2).
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	return &Signer{alg: alg, jkt: jkt, signer: s}, nil
}

// Algorithm is the JWS algorithm the proofs are signed with.
func (s *Signer) Algorithm() jose.SignatureAlgorithm { return s.alg }

// Thumbprint is the RFC 7638 thumbprint of the proof key: what an access
// token bound to this key carries in cnf.jkt.
func (s *Signer) Thumbprint() string { return s.jkt }

// ProofOptions are the optional parts of a proof.
type ProofOptions struct {
	// Nonce is the server nonce from a DPoP-Nonce header.
	Nonce string
	// AccessToken, when set, adds ath: proofs sent to an API carry it.
	AccessToken string
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// Proof returns a proof for one request to method and target. The query and
// fragment of target are left out of htu, as RFC 9449 §4.2 demands.
func (s *Signer) Proof(method, target string, o ProofOptions) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("dpop: target URL: %w", err)
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	c := proofClaims{JTI: jws.NewJTI(), HTM: method, HTU: u.String(), IAT: now.Unix(), Nonce: o.Nonce}
	if o.AccessToken != "" {
		c.ATH = accessTokenHash(o.AccessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	obj, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return obj.CompactSerialize()
}
