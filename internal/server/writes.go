package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// probeInterval bounds how often readiness writes to the store to learn
// whether writes work, while the writes it has seen succeed. While they
// fail, every readiness check probes, so that recovery is seen at the next
// check, and a load balancer sends traffic again.
const probeInterval = 5 * time.Second

// writeHealth is what the server knows of the store's writes: a store can
// answer Ping and still fail every write (corrupt pages, a full disk, a
// read-only file or a standby database), and such an instance must not get
// traffic. It learns from the decisions the endpoints commit and from a
// probe write that readiness makes when it has heard nothing lately.
type writeHealth struct {
	failing atomic.Bool
	mu      sync.Mutex // one probe at a time
	probed  time.Time  // real time of the last probe
}

// observe takes the outcome of a write. Refusals (a spent jti, a reused
// refresh token) are answers, and a write that ran out of time says
// nothing about the store's ability to write: Ping and the request
// deadline deal with a store that does not answer.
func (h *writeHealth) observe(err error) {
	switch {
	case err == nil:
		if h.failing.Load() {
			h.failing.Store(false)
		}
	case errors.Is(err, store.ErrReplay), errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrNotFound),
		errors.Is(err, store.ErrRefreshReused), errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrOutcomeUnknown), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		h.failing.Store(true)
	}
}

// check reports whether writes work, probing the store with a write of a
// single-use key (which expires at once and is swept with the others) when
// they have been failing, or when the last probe is older than
// probeInterval.
func (h *writeHealth) check(ctx context.Context, s store.Store, now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failing.Load() && time.Since(h.probed) < probeInterval {
		return nil
	}
	var b [12]byte
	rand.Read(b[:])
	err := s.ConsumeJTIs(ctx, now, []store.JTI{{Key: "probe|" + base64.RawURLEncoding.EncodeToString(b[:]), Expires: now.Add(time.Second)}})
	h.probed = time.Now()
	if err != nil {
		h.failing.Store(true)
		return err
	}
	h.failing.Store(false)
	return nil
}
