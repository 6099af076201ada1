// Package csrf protects the login pages' forms against cross-site request
// forgery with synchronizer tokens: an HMAC, under a server key, of the form
// and of the login transaction or session the form belongs to. Nothing is
// stored: any instance holding the key checks a token any other made, and a
// token dies with its transaction or session.
package csrf

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// FieldName is the name of the hidden form field that carries the token.
const FieldName = "csrf_token"

// MinKeySize is the shortest key accepted (the HMAC-SHA256 output size).
const MinKeySize = 32

// tokenLen is the length of a token: 32 bytes in base64url.
const tokenLen = 43

// Errors from Check. Both mean the form must not be acted on; they differ
// only so that logs and tests can tell a forged post from a stale page.
var (
	ErrMissing = errors.New("csrf: form has no token")
	ErrInvalid = errors.New("csrf: token does not match")
)

// Key makes and checks tokens. It is safe for concurrent use.
type Key struct {
	k []byte
}

// New returns a Key for a secret of at least MinKeySize bytes. Every
// instance that serves the same forms needs the same secret.
func New(secret []byte) (*Key, error) {
	if len(secret) < MinKeySize {
		return nil, fmt.Errorf("csrf: key has %d bytes, want at least %d", len(secret), MinKeySize)
	}
	return &Key{k: append([]byte(nil), secret...)}, nil
}

// Token returns the token for a form (a short fixed name such as "testidp")
// of one transaction or session. binding must be a value another site
// cannot learn, such as the login transaction's id or the session id from
// the cookie; then a page from another site cannot know the token. Naming the form keeps a token of one form from being replayed on
// another of the same transaction.
func (k *Key) Token(binding, form string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(binding, form))
}

// Check reports whether token is the token of form for binding. It
// compares in constant time. An empty binding never checks: a form without
// a transaction has nothing to be bound to.
func (k *Key) Check(binding, form, token string) error {
	if token == "" {
		return ErrMissing
	}
	if binding == "" || len(token) != tokenLen {
		return ErrInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return ErrInvalid
	}
	if !hmac.Equal(got, k.mac(binding, form)) {
		return ErrInvalid
	}
	return nil
}

// mac is HMAC-SHA256 over a versioned, length-prefixed encoding of form and
// binding, so that no two (form, binding) pairs share an input.
func (k *Key) mac(binding, form string) []byte {
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte("tillit csrf v1\x00"))
	var n [8]byte
	for _, s := range []string{form, binding} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}
