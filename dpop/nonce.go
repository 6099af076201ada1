package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// defaultNonceSlot is the length of one nonce time slot. A nonce is accepted
// in its own slot and the next, so it lives between one and two slots.
const defaultNonceSlot = 60 * time.Second

// NonceKey is an HMAC key for nonces. ID tells keys apart during rotation.
type NonceKey struct {
	ID     uint32
	Secret []byte
}

// Nonces issues and checks stateless server nonces (RFC 9449 §8): a nonce is
// an HMAC over a time slot, so every instance that shares the keys accepts
// every other's nonces and no nonce is ever written to a store. It is safe
// for concurrent use.
//
// A nonce is base64url(version | key ID | slot | HMAC-SHA-256(...)[:16]).
// Sixteen bytes of MAC make forging one as hard as guessing a 128-bit key.
type Nonces struct {
	slot time.Duration
	keys atomic.Pointer[[]NonceKey]
	last atomic.Pointer[issued]
}

type issued struct {
	slot  int64
	keyID uint32
	nonce string
}

const (
	nonceVersion = 1
	nonceMACLen  = 16
	nonceRawLen  = 1 + 4 + 8 + nonceMACLen
)

// NewNonces returns a nonce source with the given slot length (zero means
// one minute). keys[0] issues; all of them are accepted.
func NewNonces(slot time.Duration, keys ...NonceKey) *Nonces {
	if slot <= 0 {
		slot = defaultNonceSlot
	}
	n := &Nonces{slot: slot}
	n.SetKeys(keys...)
	return n
}

// SetKeys replaces the keys, for rotation: put the new key first and keep
// the old one for at least two slots so that nonces in flight stay valid.
func (n *Nonces) SetKeys(keys ...NonceKey) {
	if len(keys) == 0 {
		panic("dpop: Nonces needs at least one key")
	}
	k := append([]NonceKey(nil), keys...)
	n.keys.Store(&k)
}

// Issue returns the nonce for the slot that now falls in. The same nonce is
// returned for the whole slot, so it is computed once per slot.
func (n *Nonces) Issue(now time.Time) string {
	slot := now.UnixNano() / int64(n.slot)
	key := (*n.keys.Load())[0]
	if c := n.last.Load(); c != nil && c.slot == slot && c.keyID == key.ID {
		return c.nonce
	}
	var raw [nonceRawLen]byte
	raw[0] = nonceVersion
	binary.BigEndian.PutUint32(raw[1:5], key.ID)
	binary.BigEndian.PutUint64(raw[5:13], uint64(slot))
	copy(raw[13:], nonceMAC(key.Secret, raw[:13]))
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	n.last.Store(&issued{slot: slot, keyID: key.ID, nonce: s})
	return s
}

var (
	errNonceStale   = errors.New("stale")
	errNonceInvalid = errors.New("not one this server issued")
)

// Check returns nil if nonce was issued by a key of this source in the
// current or the previous slot.
func (n *Nonces) Check(nonce string, now time.Time) error {
	if len(nonce) != base64.RawURLEncoding.EncodedLen(nonceRawLen) {
		return errNonceInvalid
	}
	var raw [nonceRawLen]byte
	if m, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce)); err != nil || m != nonceRawLen || raw[0] != nonceVersion {
		return errNonceInvalid
	}
	id := binary.BigEndian.Uint32(raw[1:5])
	slot := int64(binary.BigEndian.Uint64(raw[5:13]))
	for _, k := range *n.keys.Load() {
		if k.ID != id {
			continue
		}
		if !hmac.Equal(raw[13:], nonceMAC(k.Secret, raw[:13])) {
			return errNonceInvalid
		}
		cur := now.UnixNano() / int64(n.slot)
		if slot != cur && slot != cur-1 {
			return errNonceStale
		}
		return nil
	}
	return errNonceInvalid
}

func nonceMAC(secret, msg []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tillit dpop nonce\x00"))
	m.Write(msg)
	return m.Sum(nil)[:nonceMACLen]
}
