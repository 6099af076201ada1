package resource

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// ReplayCache remembers the DPoP proofs an API has accepted, so that a
// proof is used once (RFC 9449 §11.1). Several instances of one API share
// one cache (a Redis or database implementation lives outside this
// package); a single instance can use MemoryReplayCache.
type ReplayCache interface {
	// Use records key until exp. It returns an error matching ErrReplay if
	// key is recorded and has not expired at now, and one matching
	// ErrReplayCacheFull if the cache cannot record it; it must never
	// forget an unexpired key to make room. Checking and recording are one
	// atomic step: of concurrent calls with one key, exactly one succeeds.
	// The key is at most 64 printable ASCII characters.
	Use(ctx context.Context, key string, now, exp time.Time) error
}

// defaultReplayCapacity is the capacity of a MemoryReplayCache made with
// capacity 0, as New makes when Config.Replay is nil: a proof is remembered for up to twice the proof window
// (two minutes by default), so this serves about 2,000 requests a second
// per instance, in about 30 MiB when full.
const defaultReplayCapacity = 1 << 18

// replayKey names a proof in the cache: a hash of the key thumbprint and
// the jti, since a jti need only be unique per key (RFC 9449 §11.1) and the
// cache should not hold what clients sent verbatim.
func replayKey(jkt, jti string) string {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0]))
}

// MemoryReplayCache is a ReplayCache in memory for one API instance. It
// holds at most its capacity of unexpired keys; when full it refuses new
// ones (ErrReplayCacheFull) rather than forget one that could still be
// replayed. It is safe for concurrent use.
type MemoryReplayCache struct {
	mu       sync.Mutex
	capacity int
	seen     map[string]int64 // key → exp (Unix nanoseconds)
	byExp    expiryHeap
}

// NewMemoryReplayCache returns a cache for at most capacity keys. When
// capacity ≤ 0 it holds 2^18 keys: a proof is remembered for up to twice
// the proof window (two minutes by default), so that serves about 2,000
// requests a second per instance, in about 30 MiB when full.
func NewMemoryReplayCache(capacity int) *MemoryReplayCache {
	if capacity <= 0 {
		capacity = defaultReplayCapacity
	}
	return &MemoryReplayCache{capacity: capacity, seen: map[string]int64{}}
}

// Use implements ReplayCache.
func (c *MemoryReplayCache) Use(_ context.Context, key string, now, exp time.Time) error {
	n, e := now.UnixNano(), exp.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget what has expired, oldest first: each key leaves once, so the
	// cost is spread over the calls that added them.
	for len(c.byExp) > 0 && c.byExp[0].exp <= n {
		top := heap.Pop(&c.byExp).(expiring)
		if c.seen[top.key] == top.exp {
			delete(c.seen, top.key)
		}
	}
	if old, ok := c.seen[key]; ok && old > n {
		return ErrReplay
	}
	if e <= n {
		return nil // already expired: nothing could replay it
	}
	if len(c.seen) >= c.capacity {
		return ErrReplayCacheFull
	}
	c.seen[key] = e
	heap.Push(&c.byExp, expiring{key: key, exp: e})
	return nil
}

// Len is the number of keys held.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiring struct {
	key string
	exp int64
}

// expiryHeap is a min-heap on exp.
type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
