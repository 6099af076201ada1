package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KEKSize is the size of a key-encryption key: AES-256.
const KEKSize = 32

// Sealer encrypts private keys for the store with AES-256-GCM under the
// key-encryption key (KEK). The record's purpose and ID are bound in as
// additional data, so a sealed blob copied onto another record does not open.
type Sealer struct {
	aead cipher.AEAD
}

const sealVersion = 1

// ErrWrongKEK means a sealed key did not open: the key-encryption key is not
// the one the keys were sealed with, or the record was tampered with.
var ErrWrongKEK = errors.New("keys: sealed key does not open with this key-encryption key")

// NewSealer returns a Sealer for a 32-byte KEK.
func NewSealer(kek []byte) (*Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("keys: key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// ParseKEK decodes a KEK written as base64 (standard or URL alphabet, with
// or without padding), as in TILLIT_KEY_ENCRYPTION_KEY or a key file.
func ParseKEK(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != KEKSize {
				return nil, fmt.Errorf("keys: key-encryption key must be %d bytes, got %d", KEKSize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("keys: key-encryption key is not base64")
}

// ReadKEKFile reads a KEK file (base64 text).
func ReadKEKFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if len(b) > 1024 {
		return nil, fmt.Errorf("keys: %s is too large for a key-encryption key", path)
	}
	return ParseKEK(string(b))
}

// NewKEK returns a fresh random KEK as base64, for `serve --dev` and docs.
func NewKEK() string {
	b := make([]byte, KEKSize)
	if _, err := rand.Read(b); err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Seal encrypts plaintext for the record named by aad.
func (s *Sealer) Seal(plaintext []byte, aad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte(aad)), nil
}

// Open decrypts a sealed blob for the record named by aad.
func (s *Sealer) Open(sealed []byte, aad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrWrongKEK
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(aad))
	if err != nil {
		return nil, ErrWrongKEK
	}
	return pt, nil
}
