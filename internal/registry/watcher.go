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

// Watcher keeps the current Snapshot of a store's registry and updates it
// when the store's RegistryVersion moves, with the records changed since
// the snapshot's version: the cost of an update grows with the change, not
// with the registry. An idle poll reads only the version.
//
// A change committed by any process (another instance, the CLI) is served
// by this process at most interval plus one update later, as long as the
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

// NewWatcher loads the registry once, with keys as Load takes them, and
// returns a Watcher that polls s every interval once Run is called. It
// fails if the first load fails: a server must not start without its
// registry.
func NewWatcher(ctx context.Context, s store.Store, interval time.Duration, keys KeySets) (*Watcher, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("registry: watcher interval %v is not positive", interval)
	}
	snap, err := Load(ctx, s, keys)
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

// Refresh checks the store's RegistryVersion now and, if it moved, applies
// the records changed since the snapshot's version to a copy of it. It
// returns the snapshot in use afterwards; on error that is the previous
// one.
func (w *Watcher) Refresh(ctx context.Context) (*Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refresh(ctx, nil)
}

// Sync applies want to the store as Sync does, but takes the stored
// records from the snapshot in use instead of reading them all again, and
// then brings the snapshot up to date with what it wrote, using want's
// parsed keys. It logs what it changed ("registry applied"). A server starting with a large registry thus reads and
// decodes it once.
func (w *Watcher) Sync(ctx context.Context, want Registry) (Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rep, err := syncFrom(ctx, w.store, want, w.current.Load())
	if err != nil {
		return rep, err
	}
	if rep.Changed() {
		// Logged as soon as it is committed, when other instances may
		// see it.
		w.logger().InfoContext(ctx, "registry applied", "changes", rep.String())
	}
	// When the store's version moved by exactly the transactions Sync
	// made, nobody else wrote since the snapshot and what Sync wrote is
	// the whole change: no need to read it back.
	cur := w.current.Load()
	if rep.txns > 0 {
		if v, err := w.store.RegistryVersion(ctx); err == nil && v == cur.Version()+int64(rep.txns) {
			snap, err := cur.patch(v, rep.written, want.Keys)
			if err != nil {
				return rep, fmt.Errorf("registry: update: %w", err)
			}
			w.current.Store(snap)
			w.logger().InfoContext(ctx, "registry reloaded", "from", cur.Version(), "to", v, "changes", len(rep.written))
			return rep, nil
		}
	}
	// Otherwise, and even when Sync wrote nothing, another process may
	// have written since the snapshot was loaded: a second instance
	// starting with the same file finds the first one's records and must
	// serve them now.
	_, err = w.refresh(ctx, want.Keys)
	return rep, err
}

// refresh is Refresh with keys as Load takes them. The caller holds mu.
func (w *Watcher) refresh(ctx context.Context, keys KeySets) (*Snapshot, error) {
	cur := w.current.Load()
	v, err := w.store.RegistryVersion(ctx)
	if err != nil {
		return cur, fmt.Errorf("registry: version: %w", err)
	}
	if v == cur.Version() {
		return cur, nil
	}
	var snap *Snapshot
	changes := -1
	if v < cur.Version() {
		// The version went back: the store is not the one the snapshot
		// came from (a restored backup). Nothing since can be trusted.
		snap, err = Load(ctx, w.store, keys)
	} else {
		var cs []store.RecordChange
		var version int64
		if cs, version, err = w.store.RecordChanges(ctx, cur.Version()); err == nil {
			changes = len(cs)
			snap, err = cur.patch(version, fromStore(cs), keys)
		}
	}
	if err != nil {
		return cur, fmt.Errorf("registry: update: %w", err)
	}
	w.current.Store(snap)
	if changes < 0 {
		w.logger().WarnContext(ctx, "registry reloaded: the store's version went back", "from", cur.Version(), "to", snap.Version())
	} else {
		w.logger().InfoContext(ctx, "registry reloaded", "from", cur.Version(), "to", snap.Version(), "changes", changes)
	}
	return snap, nil
}

func (w *Watcher) logger() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}
