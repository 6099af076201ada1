package resource

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"
)

// tokenDigest is the SHA-256 of an access token: the token cache's key, and
// what a DPoP proof's ath encodes, so one hash serves both. It hashes the
// token in place: a copy for every request would be a kilobyte of garbage,
// and the hash only reads the bytes.
func tokenDigest(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// tokenCache remembers access tokens that passed verifyToken, by the
// SHA-256 of the token: a hit means these exact bytes were verified. It
// holds at most size entries; when full it drops the expired ones, and if
// none are, an arbitrary one: forgetting a verified token costs one more
// signature check, never a wrong answer.
type tokenCache struct {
	mu     sync.RWMutex
	size   int
	maxAge time.Duration
	m      map[[32]byte]cachedClaims
}

type cachedClaims struct {
	c     *Claims
	until time.Time
}

func newTokenCache(size int, maxAge time.Duration) *tokenCache {
	return &tokenCache{size: size, maxAge: maxAge, m: make(map[[32]byte]cachedClaims, min(size, 1024))}
}

func (t *tokenCache) get(key [32]byte, now time.Time) (*Claims, bool) {
	t.mu.RLock()
	e, ok := t.m[key]
	t.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.c, true
}

// put remembers c until exp, or for maxAge, so that a token signed by a
// key the issuer has since withdrawn is checked again within that time.
func (t *tokenCache) put(key [32]byte, c *Claims, now, exp time.Time) {
	until := now.Add(t.maxAge)
	if exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.size {
		for k, e := range t.m {
			if !now.Before(e.until) {
				delete(t.m, k)
			}
		}
		for k := range t.m {
			if len(t.m) < t.size {
				break
			}
			delete(t.m, k)
		}
	}
	t.m[key] = cachedClaims{c: c, until: until}
}
