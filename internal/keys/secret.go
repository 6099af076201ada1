package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tillit-sts/tillit/internal/store"
)

// SecretSize is the size of a service secret (Secret): the HMAC-SHA256
// output size, so that nothing keyed by it is weaker than SHA-256.
const SecretSize = 32

// Secret returns the service secret of purpose: 32 random bytes made on
// the first call against a store and kept there sealed, like the other
// keys, so that every instance uses the same one. It is never rotated;
// what depends on it (the login pages' CSRF tokens and transactions) lives
// minutes, and the caller derives its keys from it with HKDF and a label
// of its own, so that no two uses share a key.
//
// Instances starting at once on a new store race to create generation 1;
// the store lets one win, and every instance then reads the winner's, so
// none uses a secret it made but did not store.
func (m *Manager) Secret(ctx context.Context, purpose store.KeyPurpose) ([]byte, error) {
	recs, err := m.store.Keys(ctx, purpose)
	if err != nil {
		return nil, fmt.Errorf("keys: load the %s secret: %w", purpose, err)
	}
	if len(recs) == 0 {
		secret := make([]byte, SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		now := m.now()
		k := store.Key{ID: string(purpose) + "-1", Purpose: purpose, Generation: 1, Algorithm: "HS256", CreatedAt: now, ActiveFrom: now}
		if k.Sealed, err = m.sealer.Seal(secret, aad(k)); err != nil {
			return nil, fmt.Errorf("keys: seal: %w", err)
		}
		switch err := m.store.CreateKey(ctx, k); {
		case err == nil:
			m.log.Info("service secret created", "purpose", string(purpose))
		case !errors.Is(err, store.ErrAlreadyExists):
			return nil, fmt.Errorf("keys: create the %s secret: %w", purpose, err)
		}
		if recs, err = m.store.Keys(ctx, purpose); err != nil {
			return nil, fmt.Errorf("keys: load the %s secret: %w", purpose, err)
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("keys: the %s secret was created but cannot be read", purpose)
		}
	}
	secret, err := m.sealer.Open(recs[0].Sealed, aad(recs[0]))
	if err != nil {
		return nil, fmt.Errorf("keys: %s secret %s: %w", purpose, recs[0].ID, err)
	}
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("keys: %s secret %s has %d bytes, want %d", purpose, recs[0].ID, len(secret), SecretSize)
	}
	return secret, nil
}

// SecretAEAD is AES-256-GCM under a key derived from a service secret
// with HKDF-SHA256 and label (RFC 5869): each use of a secret that seals
// something has a label of its own, so that no two share a key.
func SecretAEAD(secret []byte, label string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, label, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive the %q key: %w", label, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
