package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// TestLeaseRenewal: a server renews its instance lease while it serves. A
// server that could not renew in time and finds its name taken by another
// reports not ready until it gets the name back. (Waiting for a crashed
// server's lease to expire is tested with real processes, in
// internal/clustertest.)
func TestLeaseRenewal(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := &config.Config{Instance: "sts-a"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newServer := func(holder string) *Server {
		return &Server{store: st, cfg: cfg, now: clock, log: log, holder: holder, leaseTTL: DefaultLeaseTTL}
	}
	ctx := t.Context()
	one, two := newServer("one"), newServer("two")
	if err := one.acquireLease(ctx, false); err != nil {
		t.Fatalf("one: %v", err)
	}
	ready := func(s *Server) int {
		w := httptest.NewRecorder()
		s.serveReady(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code
	}

	// Renewed within its time, one keeps the name past the first expiry.
	now = now.Add(DefaultLeaseTTL / 3)
	if err := one.renewLease(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	now = now.Add(DefaultLeaseTTL * 2 / 3)
	if err := two.acquireLease(ctx, false); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("two after one renewed: err = %v, want %v", err, store.ErrLeaseHeld)
	}

	// one misses its renewals (a stalled store, a paused VM) and two
	// takes the name: one must not look ready any more.
	now = now.Add(DefaultLeaseTTL)
	if err := two.acquireLease(ctx, false); err != nil {
		t.Fatalf("two once one's lease expired: %v", err)
	}
	err = one.renewLease(ctx)
	if !errors.Is(err, store.ErrLeaseHeld) || !strings.Contains(err.Error(), "served by two since") {
		t.Fatalf("one's renewal after two took the name: err = %v, want it to name two", err)
	}
	if got := ready(one); got != http.StatusServiceUnavailable {
		t.Errorf("one's /readyz = %d, want %d", got, http.StatusServiceUnavailable)
	}

	// two stops cleanly; one gets the name back at its next renewal.
	two.releaseLease()
	if err := one.renewLease(ctx); err != nil {
		t.Fatalf("one's renewal after two released: %v", err)
	}
	if one.leaseLost.Load() {
		t.Errorf("one still counts its lease as lost")
	}
}
