package token

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/keys"
)

// NamesClaim is the access token claim that carries the names an identity
// provider gave at login, sealed, for userinfo. HelseID's access tokens
// carry no names, and an API is not to read them from the token either:
// only the token service can open the claim. It goes in only when the
// login had names and the profile scope was granted.
const NamesClaim = "tillit_names"

// NameSealer seals a login's names into its access tokens and opens them
// at userinfo, with AES-256-GCM under a key derived from a service secret
// that every instance shares. The refresh grant and token exchange copy
// the claim with the rest of the token's identity, so every access token
// of the login gives the same names at userinfo, for as long as it lives,
// without a store read.
type NameSealer struct {
	aead cipher.AEAD
}

// NewNameSealer derives the sealing key from secret (keys.Manager.Secret
// with store.PurposeNames).
func NewNameSealer(secret []byte) (*NameSealer, error) {
	aead, err := keys.SecretAEAD(secret, "tillit access token names v1")
	if err != nil {
		return nil, err
	}
	return &NameSealer{aead: aead}, nil
}

// errNames means a names claim did not open.
var errNames = errors.New("token: names claim does not open")

type sealedNames struct {
	Given  string `json:"g,omitempty"`
	Middle string `json:"m,omitempty"`
	Family string `json:"f,omitempty"`
	Full   string `json:"n,omitempty"`
}

// seal returns the claim for names, bound to the person's sub so that it
// does not open in a token about someone else.
func (s *NameSealer) seal(n identity.Names, sub string) (string, error) {
	pt, err := json.Marshal(sealedNames(n))
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, pt, []byte(sub))), nil
}

// open reads what seal wrote for sub.
func (s *NameSealer) open(claim, sub string) (identity.Names, error) {
	b, err := base64.RawURLEncoding.DecodeString(claim)
	n := s.aead.NonceSize()
	if err != nil || len(b) < n+s.aead.Overhead() {
		return identity.Names{}, errNames
	}
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(sub))
	if err != nil {
		return identity.Names{}, errNames
	}
	var v sealedNames
	if err := json.Unmarshal(pt, &v); err != nil {
		return identity.Names{}, errNames
	}
	return identity.Names(v), nil
}
