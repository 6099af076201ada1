package sqlite

import (
	"errors"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// The jti log's seq must never be handed out twice, even after cleanup has
// deleted every row: another Store reads "rows after the last seq I saw",
// and a reused seq would hide a spent key from it.
func TestReplayAcrossStoresAfterCleanup(t *testing.T) {
	path := tempDB(t)
	a, b := openTest(t, path, Options{}), openTest(t, path, Options{})
	short := []store.JTI{{Key: "x", Expires: now.Add(time.Second)}}
	if err := a.ConsumeJTIs(bg, now, short); err != nil {
		t.Fatal(err)
	}
	if n, err := b.DeleteExpiredJTIs(bg, now.Add(2*time.Second)); err != nil || n != 1 {
		t.Fatalf("cleanup: %d, %v", n, err)
	}
	if err := b.ConsumeJTIs(bg, now, jti("y")); err != nil {
		t.Fatal(err)
	}
	if err := a.ConsumeJTIs(bg, now, jti("y")); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("key spent through the other store after cleanup: got %v, want ErrReplay", err)
	}
}

// Spent keys survive a restart: a new Store reads them from the log.
func TestReplayAfterReopen(t *testing.T) {
	path := tempDB(t)
	a, err := Open(bg, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ConsumeJTIs(bg, now, jti("k")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openTest(t, path, Options{})
	var re *store.ReplayError
	if err := b.ConsumeJTIs(bg, now, jti("k")); !errors.As(err, &re) || re.Key != "k" {
		t.Fatalf("after reopen: got %v, want a ReplayError for k", err)
	}
	// An expired key is free again after a restart too.
	if err := b.ConsumeJTIs(bg, now.Add(2*time.Minute), jti("k")); err != nil {
		t.Fatalf("expired key after reopen: %v", err)
	}
}

// A failed op takes its keys back out of memory, not only out of the table.
func TestReplayUndoOnFailedOp(t *testing.T) {
	s := openTest(t, tempDB(t), Options{})
	// "b" is spent; a call with [a, b] fails and must not leave "a" spent.
	if err := s.ConsumeJTIs(bg, now, jti("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeJTIs(bg, now, []store.JTI{jti("a")[0], jti("b")[0]}); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("got %v", err)
	}
	if err := s.ConsumeJTIs(bg, now, jti("a")); err != nil {
		t.Fatalf("a was left spent by a refused call: %v", err)
	}
}
