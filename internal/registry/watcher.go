package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// Watcher keeps the current Snapshot of a store's registry and reloads it
// when the store's RegistryVersion changes.
//
// A change committed by any process (another instance, the CLI) is served
// by this process at most interval plus one Load later, as long as the
// store is reachable; Refresh makes a change made by this process visible at
// once. While the store cannot be read, the last good snapshot stays in use
// and each failed poll is logged.
type Watcher struct {
	// Log receives reload failures and reloads. Set it before Run; nil
	// means slog.Default().
	Log *slog.Logger

	store    store.Store
	interval time.Duration
	current  atomic.Pointer[Snapshot]
	mu       sync.Mutex // one reload at a time
}

// NewWatcher loads the registry once and returns a Watcher that polls s
// every interval once Run is called. It fails if the first load fails: a
// server must not start without its registry.
func NewWatcher(ctx context.Context, s store.Store, interval time.Duration) (*Watcher, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("registry: watcher interval %v is not positive", interval)
	}
	snap, err := Load(ctx, s)
	if err != nil {
		return nil, err
	}
	w := &Watcher{store: s, interval: interval}
	w.current.Store(snap)
	return w, nil
}

// Current returns the snapshot in use. It never returns nil and never
// blocks.
func (w *Watcher) Current() *Snapshot { return w.current.Load() }

// Run polls the store every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := w.Refresh(ctx); err != nil && !errors.Is(err, context.Canceled) {
			w.logger().WarnContext(ctx, "registry reload failed; serving the previous snapshot",
				"version", w.Current().Version(), "err", err)
		}
	}
}

// Refresh checks the store's RegistryVersion now and loads a new snapshot if
// it changed. It returns the snapshot in use afterwards; on error that is
// the previous one.
func (w *Watcher) Refresh(ctx context.Context) (*Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.current.Load()
	v, err := w.store.RegistryVersion(ctx)
	if err != nil {
		return cur, fmt.Errorf("registry: version: %w", err)
	}
	// Compare for inequality, not order: the store promises only that the
	// number changes.
	if v == cur.Version() {
		return cur, nil
	}
	snap, err := Load(ctx, w.store)
	if err != nil {
		return cur, err
	}
	w.current.Store(snap)
	w.logger().InfoContext(ctx, "registry reloaded", "from", cur.Version(), "to", snap.Version())
	return snap, nil
}

func (w *Watcher) logger() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}
