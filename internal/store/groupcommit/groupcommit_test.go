package groupcommit

import (
	"testing"
	"time"
)

// guard is far beyond anything Hold should take here and far below long,
// the delay of the tests in which the delay must not be what ends a hold.
const (
	guard = 20 * time.Second
	long  = time.Hour
)

// hold runs Hold on a batch of n in a goroutine, taking ints from
// arrivals, and hands back the size of the batch it returns.
func hold(p *Pacer, n, limit int, arrivals chan int, quit chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() { out <- len(Hold(p, make([]int, n), limit, arrivals, quit)) }()
	return out
}

func result(t *testing.T, out <-chan int) int {
	t.Helper()
	select {
	case n := <-out:
		return n
	case <-time.After(guard):
		t.Fatalf("Hold still holds after %v", guard)
		return 0
	}
}

// waitHeld waits until a writer holds a batch of n.
func waitHeld(t *testing.T, p *Pacer, n int64) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for p.Held() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Held = %d, want %d", p.Held(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func announce(p *Pacer, n int) {
	for range n {
		p.ExpectWrite()
	}
}

// TestHoldReturnsAtOnce: the cases in which nothing is worth waiting for.
func TestHoldReturnsAtOnce(t *testing.T) {
	tests := []struct {
		name      string
		p         *Pacer
		announced int
		n, limit  int
	}{
		{"nil pacer", nil, 5, 1, 10},
		{"zero delay", New(0), 5, 1, 10},
		{"negative delay", New(-time.Second), 5, 1, 10},
		{"nothing announced", New(long), 0, 1, 10},
		{"every announced write in the batch", New(long), 3, 3, 10},
		{"more in the batch than announced", New(long), 1, 4, 10},
		{"batch full", New(long), 20, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			announce(tt.p, tt.announced)
			if got := result(t, hold(tt.p, tt.n, tt.limit, make(chan int), nil)); got != tt.n {
				t.Errorf("Hold = %d, want %d", got, tt.n)
			}
			if tt.p.Held() != -1 {
				t.Errorf("Held = %d after Hold returned, want -1", tt.p.Held())
			}
		})
	}
}

// TestHoldWaitsForAnnounced: a batch is held until every announced write
// has arrived, and no longer.
func TestHoldWaitsForAnnounced(t *testing.T) {
	p := New(long)
	announce(p, 4)
	arrivals := make(chan int)
	out := hold(p, 1, 10, arrivals, nil)
	for i := 2; i <= 4; i++ {
		waitHeld(t, p, int64(i-1))
		arrivals <- i
	}
	if got := result(t, out); got != 4 {
		t.Errorf("Hold = %d, want the 4 announced", got)
	}
}

// TestHoldStopsAtLimit: a full batch commits even with more announced.
func TestHoldStopsAtLimit(t *testing.T) {
	p := New(long)
	announce(p, 10)
	arrivals := make(chan int)
	out := hold(p, 1, 3, arrivals, nil)
	arrivals <- 0
	arrivals <- 0
	if got := result(t, out); got != 3 {
		t.Errorf("Hold = %d, want the limit, 3", got)
	}
}

// TestWriteDoneReleases: a write that is settled without arriving (its
// caller failed first) releases the held batch at once.
func TestWriteDoneReleases(t *testing.T) {
	p := New(long)
	announce(p, 3)
	out := hold(p, 1, 10, make(chan int), nil)
	waitHeld(t, p, 1)
	p.WriteDone() // 2 announced: still one missing
	select {
	case n := <-out:
		t.Fatalf("Hold returned %d with an announced write still missing", n)
	case <-time.After(20 * time.Millisecond):
	}
	p.WriteDone()
	if got := result(t, out); got != 1 {
		t.Errorf("Hold = %d, want 1", got)
	}
	if p.Expected() != 1 {
		t.Errorf("Expected = %d, want 1 (the write in the batch)", p.Expected())
	}
}

// TestHoldDelayRunsOut: an announced write that never comes is waited for
// no longer than the delay.
func TestHoldDelayRunsOut(t *testing.T) {
	p := New(5 * time.Millisecond)
	announce(p, 2)
	if got := result(t, hold(p, 1, 10, make(chan int), nil)); got != 1 {
		t.Errorf("Hold = %d, want 1", got)
	}
}

// TestHoldQuit: closing quit ends a hold.
func TestHoldQuit(t *testing.T) {
	p := New(long)
	announce(p, 2)
	quit := make(chan struct{})
	out := hold(p, 1, 10, make(chan int), quit)
	waitHeld(t, p, 1)
	close(quit)
	if got := result(t, out); got != 1 {
		t.Errorf("Hold = %d, want 1", got)
	}
}

// TestManyWriters runs the protocol as a store and its callers do: each
// caller announces a write, then either sends it and waits for its batch
// to commit, or gives up without sending; both settle. The writer takes
// one op, holds, and answers the batch. Every caller must be answered, and
// the count must come back to zero (run with -race).
func TestManyWriters(t *testing.T) {
	p := New(long)
	const callers = 200
	announce(p, callers)
	ops := make(chan chan struct{})
	quit := make(chan struct{})
	go func() {
		for {
			var batch []chan struct{}
			select {
			case o := <-ops:
				batch = append(batch, o)
			case <-quit:
				return
			}
			for _, o := range Hold(p, batch, 16, ops, quit) {
				close(o)
			}
		}
	}()
	defer close(quit)
	finished := make(chan struct{}, callers)
	for i := range callers {
		go func() {
			if i%3 != 0 {
				answer := make(chan struct{})
				ops <- answer
				<-answer
			}
			p.WriteDone()
			finished <- struct{}{}
		}()
	}
	for i := range callers {
		select {
		case <-finished:
		case <-time.After(guard):
			t.Fatalf("%d of %d callers answered; Expected %d, Held %d", i, callers, p.Expected(), p.Held())
		}
	}
	if p.Expected() != 0 {
		t.Errorf("Expected = %d after every write settled", p.Expected())
	}
}

// TestStaleNudge: a nudge left in the channel by an earlier hold (its
// writer returned for an arrival just as a caller settled) does not end
// the next hold while announced writes are missing.
func TestStaleNudge(t *testing.T) {
	p := New(long)
	announce(p, 1)
	p.held.Store(5) // as if a writer held a batch of 5
	p.WriteDone()   // nudges it
	p.held.Store(-1)
	if len(p.nudge) != 1 {
		t.Fatal("no nudge was left to test with")
	}
	announce(p, 3)
	out := hold(p, 1, 10, make(chan int), nil)
	select {
	case n := <-out:
		t.Fatalf("a stale nudge ended the hold at %d with 2 announced writes missing", n)
	case <-time.After(50 * time.Millisecond):
	}
	p.WriteDone()
	p.WriteDone()
	if got := result(t, out); got != 1 {
		t.Errorf("Hold = %d, want 1", got)
	}
}
