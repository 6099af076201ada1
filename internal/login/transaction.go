package login

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tillit-sts/tillit/internal/keys"
)

// A login transaction is the authorization request a person is logging in
// for, carried by the browser from page to page as a sealed value: AES-256-GCM
// under a key only the servers hold, so the browser can neither read nor
// change it, and any instance can open it. Each has a random ID, which the
// CSRF tokens of its forms are bound to, and an expiry.
//
// Sealed rather than stored: starting a login writes nothing, so a person
// who walks away, or a script that starts logins without end, leaves no
// rows behind, and nothing must be swept or shared but the key. What it
// gives up is single use: until it expires the same value can be posted
// again, which only starts another login at the identity provider for the
// same browser; the code at the end is single use and bound to the
// client's PKCE verifier, and an upstream provider's state is a
// single-use store record (store.UpstreamLogin).
type transaction struct {
	// ID is 128 random bits, hex: the CSRF binding.
	ID string `json:"id"`
	// Request is the authorization request (authorize.Request.Marshal).
	Request json.RawMessage `json:"req"`
	// IdP is the identity provider chosen, once it is.
	IdP string `json:"idp,omitempty"`
	// Expires is the unix time the transaction ends.
	Expires int64 `json:"exp"`
}

// txAAD binds a sealed transaction to its use and format version.
const txAAD = "tillit login transaction v1"

// maxSealed bounds a sealed transaction as sent back: a request is at most
// a few kilobytes (authorize bounds every parameter), sealed and encoded.
const maxSealed = 48 << 10

var (
	errTxInvalid = errors.New("login: transaction invalid")
	errTxExpired = errors.New("login: transaction expired")
)

// sealer seals and opens transactions.
type sealer struct {
	aead cipher.AEAD
}

// deriveKey derives a key for one use from the login secret (HKDF-SHA256,
// RFC 5869), so that the CSRF key and the transaction key are unrelated.
func deriveKey(secret []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, label, 32)
}

func newSealer(secret []byte) (*sealer, error) {
	aead, err := keys.SecretAEAD(secret, "tillit/login/transaction")
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func newTxID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("login: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func (s *sealer) seal(tx *transaction) (string, error) {
	plain, err := json.Marshal(tx)
	if err != nil {
		return "", fmt.Errorf("login: seal transaction: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(txAAD))), nil
}

// open returns the transaction of a sealed value, errTxInvalid for one
// that is not a value this service sealed (or was changed), errTxExpired
// for one past its expiry at now.
func (s *sealer) open(v string, now time.Time) (*transaction, error) {
	if v == "" || len(v) > maxSealed {
		return nil, errTxInvalid
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, errTxInvalid
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(txAAD))
	if err != nil {
		return nil, errTxInvalid
	}
	tx := new(transaction)
	if err := json.Unmarshal(plain, tx); err != nil || tx.ID == "" {
		return nil, errTxInvalid
	}
	if now.Unix() >= tx.Expires {
		return nil, errTxExpired
	}
	return tx, nil
}
