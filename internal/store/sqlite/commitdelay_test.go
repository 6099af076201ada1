package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
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

// decide commits a decision that spends key through p in a goroutine and
// hands back its answer.
func decide(p store.Pending, key string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := p.Commit(bg, now, store.Decision{JTIs: jti(key), Audit: store.AuditRecord{
			Instance: "sts", Time: now, Endpoint: "token", Outcome: "issued",
		}})
		done <- err
	}()
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

// TestCommitDelayGroupsAnnouncedWrites: decisions announced with
// ExpectDecision wait for each other and commit together, in one batch, and
// each commit settles its announcement.
func TestCommitDelayGroupsAnnouncedWrites(t *testing.T) {
	s := openTest(t, tempDB(t), Options{CommitDelay: long, AuditKey: storetest.AuditKey})
	const n = 20
	pending := make([]store.Pending, n)
	for i := range n {
		pending[i] = s.ExpectDecision()
	}
	batches0 := s.batches.Load()
	answers := make([]<-chan error, n)
	for i := range n {
		answers[i] = decide(pending[i], fmt.Sprint("k", i))
	}
	for i, done := range answers {
		if err := returns(t, fmt.Sprint("write ", i), done); err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if got := s.batches.Load() - batches0; got != 1 {
		t.Errorf("%d announced writes took %d commits, want 1", n, got)
	}
	if got := s.ExpectedWrites(); got != 0 {
		t.Errorf("ExpectedWrites = %d after every decision committed, want 0", got)
	}
	for _, p := range pending {
		p.Close() // settled already: changes nothing
	}
	if got := s.ExpectedWrites(); got != 0 {
		t.Errorf("ExpectedWrites = %d after Close of committed decisions, want 0", got)
	}
	// Each was recorded once: spending any again is a replay.
	for i := range n {
		if err := s.ConsumeJTIs(bg, now, jti(fmt.Sprint("k", i))); !errors.Is(err, store.ErrReplay) {
			t.Errorf("k%d spent again: %v, want a replay", i, err)
		}
	}
}

// TestCommitDelayRefusedCommitStaysAnnounced: a decision the store refuses
// (a replayed jti) leaves its announcement standing for the refusal the
// caller commits next; that commit, or Close, settles it, once.
func TestCommitDelayRefusedCommitStaysAnnounced(t *testing.T) {
	s := openTest(t, tempDB(t), Options{CommitDelay: long, AuditKey: storetest.AuditKey})
	if err := s.ConsumeJTIs(bg, now, jti("spent")); err != nil {
		t.Fatal(err)
	}
	p := s.ExpectDecision()
	if err := returns(t, "replayed decision", decide(p, "spent")); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("replayed decision: %v, want a replay", err)
	}
	if got := s.ExpectedWrites(); got != 1 {
		t.Fatalf("ExpectedWrites = %d after a refused commit, want 1", got)
	}
	if err := returns(t, "the refusal", decide(p, "refusal")); err != nil {
		t.Fatal(err)
	}
	if got := s.ExpectedWrites(); got != 0 {
		t.Fatalf("ExpectedWrites = %d after the refusal committed, want 0", got)
	}
	q := s.ExpectDecision()
	q.Close()
	q.Close()
	if got := s.ExpectedWrites(); got != 0 {
		t.Errorf("ExpectedWrites = %d after Close twice, want 0", got)
	}
}

// TestCommitDelayNotWhenNothingIsAnnounced: without announcements a delay
// changes nothing; a lone write, or one whose announced peers are all in
// its batch, commits at once.
func TestCommitDelayNotWhenNothingIsAnnounced(t *testing.T) {
	s := openTest(t, tempDB(t), Options{CommitDelay: long, AuditKey: storetest.AuditKey})
	if err := returns(t, "unannounced write", consume(s, "lone")); err != nil {
		t.Fatal(err)
	}
	if err := returns(t, "the one announced write", decide(s.ExpectDecision(), "announced")); err != nil {
		t.Fatal(err)
	}
}

// TestCommitDelayClose: Close ends a held batch and commits it; the write
// is durable, as its nil answer says.
func TestCommitDelayClose(t *testing.T) {
	path := tempDB(t)
	s, err := Open(bg, path, Options{CommitDelay: long, AuditKey: storetest.AuditKey})
	if err != nil {
		t.Fatal(err)
	}
	// Two announced, one on its way: the writer holds it for the other.
	p := s.ExpectDecision()
	defer p.Close()
	done := decide(s.ExpectDecision(), "held")
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
