// Package groupcommit paces a store's writer: it lets the writer hold a
// batch open, briefly, for writes that callers have announced and not yet
// sent, so that one durable commit serves them all.
//
// A store commits concurrent writes together already (group commit): what
// arrives while a commit is under way shares the next one. Under load that
// still leaves commits of a few writes each, and each durable commit has a
// cost that does not depend on how many writes it carries (an fsync, a WAL
// flush). Waiting a little before committing makes commits fuller, but a
// plain delay, like PostgreSQL's commit_delay, also delays a lone caller
// who has no one to wait for. Here callers announce a write when they begin
// the work that ends in it (a token request once its form is read, a
// signature or two before its commit), and the writer waits only while
// announced writes are missing from its batch: with nothing announced, or
// every announced write already in the batch, it commits at once.
package groupcommit

import (
	"sync/atomic"
	"time"
)

// A Pacer counts announced writes and holds a writer's batch open for
// them. The zero Pacer and a nil *Pacer never hold. Its methods are safe
// for concurrent use; Hold is exact for one writer, and with several
// writers sharing a Pacer each may wait, at most the delay, for writes
// bound for another.
type Pacer struct {
	delay time.Duration
	// expected counts announced writes not yet settled; held is the size
	// of the batch a writer holds open, -1 when none; nudge wakes a
	// holding writer when expected drops to held.
	expected atomic.Int64
	held     atomic.Int64
	nudge    chan struct{}
}

// New returns a Pacer that holds a batch open for at most delay. A delay of
// zero or less never holds.
func New(delay time.Duration) *Pacer {
	p := &Pacer{delay: max(0, delay), nudge: make(chan struct{}, 1)}
	p.held.Store(-1)
	return p
}

// ExpectWrite announces a write: the caller has begun work that ends in one
// write. WriteDone must follow, once the write has returned or once the
// caller knows it will not make it. A write that is announced and never
// settled makes every later batch wait the full delay.
func (p *Pacer) ExpectWrite() {
	if p != nil {
		p.expected.Add(1)
	}
}

// WriteDone settles one ExpectWrite.
func (p *Pacer) WriteDone() {
	if p == nil {
		return
	}
	// Hold stores held, then loads expected; this adds to expected, then
	// loads held. Whichever goes second sees the other's write, so a
	// holding writer either sees the drop itself or gets the nudge.
	if n := p.expected.Add(-1); n <= p.held.Load() {
		select {
		case p.nudge <- struct{}{}:
		default:
		}
	}
}

// Expected is the number of announced writes not yet settled.
func (p *Pacer) Expected() int64 {
	if p == nil {
		return 0
	}
	return p.expected.Load()
}

// Held is the size of the batch a writer holds open, or -1.
func (p *Pacer) Held() int64 {
	if p == nil {
		return -1
	}
	return p.held.Load()
}

// Hold holds a writer's batch open while it has fewer writes than are
// announced, for at most p's delay, appending each write that arrives, and
// returns the batch when the writer should commit it. Writes in the batch
// count among the announced (their callers settle once answered), so the
// batch is committed as soon as every announced write is in it, when it
// reaches limit, when the delay is over, or when quit is closed.
func Hold[T any](p *Pacer, batch []T, limit int, arrivals <-chan T, quit <-chan struct{}) []T {
	if p == nil || p.delay == 0 || len(batch) >= limit || int64(len(batch)) >= p.expected.Load() {
		return batch
	}
	timer := time.NewTimer(p.delay)
	defer timer.Stop()
	defer p.held.Store(-1)
	for len(batch) < limit {
		p.held.Store(int64(len(batch)))
		if int64(len(batch)) >= p.expected.Load() {
			return batch
		}
		select {
		case v := <-arrivals:
			batch = append(batch, v)
		case <-p.nudge:
		case <-timer.C:
			return batch
		case <-quit:
			return batch
		}
	}
	return batch
}
