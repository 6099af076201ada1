package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// guard is how long a write that should commit at once may take before the
// test calls it held: far beyond any commit, far below the delays used.
const guard = 20 * time.Second

// long is a commit delay no test waits for: a write that is held for it
// shows up as a test failing at guard.
const long = time.Hour

// returns waits for a write's answer or fails at guard.
func returns(t *testing.T, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(guard):
		t.Fatalf("%s: still held after %v", what, guard)
		return nil
	}
}

// consume spends key in a goroutine and hands back its answer.
func consume(s *Store, key string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.ConsumeJTIs(bg, now, jti(key)) }()
	return done
}

// waitHeld waits until the writer holds a batch of n ops open.
func waitHeld(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for s.pacer.Held() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the writer does not hold a batch of %d (held %d)", n, s.pacer.Held())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCommitDelayGroupsAnnouncedWrites: writes announced with ExpectWrite
// wait for each other and commit together, in one batch.
func TestCommitDelayGroupsAnnouncedWrites(t *testing.T) {
	s := openTest(t, tempDB(t), Options{CommitDelay: long})
	const n = 20
	for range n {
		s.ExpectWrite()
	}
	batches0 := s.batches.Load()
	answers := make([]<-chan error, n)
	for i := range n {
		answers[i] = consume(s, fmt.Sprint("k", i))
	}
	for i, done := range answers {
		if err := returns(t, fmt.Sprint("write ", i), done); err != nil {
			t.Errorf("write %d: %v", i, err)
		}
		s.WriteDone()
	}
	if got := s.batches.Load() - batches0; got != 1 {
		t.Errorf("%d announced writes took %d commits, want 1", n, got)
	}
	if got := s.ExpectedWrites(); got != 0 {
		t.Errorf("ExpectedWrites = %d after every write settled, want 0", got)
	}
	// Each was recorded once: spending any again is a replay.
	for i := range n {
		if err := s.ConsumeJTIs(bg, now, jti(fmt.Sprint("k", i))); !errors.Is(err, store.ErrReplay) {
			t.Errorf("k%d spent again: %v, want a replay", i, err)
		}
	}
}

// TestCommitDelayNotWhenNothingIsAnnounced: without announcements a delay
// changes nothing; a lone write, or one whose announced peers are all in
// its batch, commits at once.
func TestCommitDelayNotWhenNothingIsAnnounced(t *testing.T) {
	s := openTest(t, tempDB(t), Options{CommitDelay: long})
	if err := returns(t, "unannounced write", consume(s, "lone")); err != nil {
		t.Fatal(err)
	}
	s.ExpectWrite()
	if err := returns(t, "the one announced write", consume(s, "announced")); err != nil {
		t.Fatal(err)
	}
	s.WriteDone()
}

// TestCommitDelayClose: Close ends a held batch and commits it; the write
// is durable, as its nil answer says.
func TestCommitDelayClose(t *testing.T) {
	path := tempDB(t)
	s, err := Open(bg, path, Options{CommitDelay: long})
	if err != nil {
		t.Fatal(err)
	}
	s.ExpectWrite()
	s.ExpectWrite()
	done := consume(s, "held")
	waitHeld(t, s, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := returns(t, "held write at Close", done); err != nil {
		t.Fatalf("held write: %v", err)
	}
	wg.Wait()
	again := openTest(t, path, Options{})
	if err := again.ConsumeJTIs(bg, now, jti("held")); !errors.Is(err, store.ErrReplay) {
		t.Errorf("the held write, answered nil at Close, was not recorded: %v", err)
	}
}
