package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/groupcommit"
)

// maxBatch bounds how many writes share one transaction, so that one batch
// does not keep its first caller, or another process, waiting for long.
const maxBatch = 256

// An op is one write: one call of a Store method. It runs inside its own
// savepoint of a batch transaction, so it is all-or-nothing on its own.
type op struct {
	ctx context.Context
	// run does the write. An error rolls back everything run did and is
	// returned to the caller; the batch goes on.
	run  func(tx *wtx) error
	done chan error // buffered: the writer never blocks on an answer
	// replay marks an op that reads or changes the in-memory replay set:
	// its batch first reads what other processes appended to jti_log. Such
	// an op runs without a savepoint, which saves two statements per token
	// on the hot path: it decides before its first write, refusing with an
	// error made by refuse, and any other error fails the whole batch.
	replay bool
	// state is opQueued until the writer runs the op in a transaction
	// that holds the write lock (opTaken) or its caller stops waiting
	// (opAbandoned), whichever comes first.
	state atomic.Int32
}

// States of an op.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// refusal is an op's answer made before it wrote anything: only that op
// fails, the batch goes on.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// refuse marks err as a refusal made before any write.
func refuse(err error) error { return &refusal{err} }

// wtx is the write connection as ops see it. Only the writer goroutine
// uses it, so its statement cache needs no lock.
//
// Statements run with a background context, never a caller's: a canceled
// context makes the driver interrupt the statement, and SQLite may then roll
// back the whole transaction, taking the other callers' writes with it.
// A caller's context is only checked before its batch starts.
type wtx struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

func (t *wtx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = st
	return st, nil
}

func (t *wtx) exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

func (t *wtx) queryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		// Unprepared, so that the Row carries the same error.
		return t.conn.QueryRowContext(context.Background(), query, args...)
	}
	return st.QueryRowContext(context.Background(), args...)
}

func (t *wtx) close() {
	for _, st := range t.stmts {
		st.Close()
	}
}

// write runs fn as one op on the writer goroutine and returns its error,
// once the batch it ran in is committed (or failed).
//
// A caller whose context ends before the writer has begun its op (the
// batch waits for the write lock, which another process may hold for
// long) returns ctx.Err() at once, and the op never runs. Once begun, the
// op is written whole or not at all: a caller whose context ends before
// the commit has answered returns store.ErrOutcomeUnknown rather than
// wait. Otherwise the answer is true: nil means written and durable, an
// error means nothing was written.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	return s.writeOp(ctx, false, fn)
}

func (s *Store) writeOp(ctx context.Context, replay bool, fn func(tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{ctx: ctx, run: fn, done: make(chan error, 1), replay: replay}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return ErrClosed
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
	}
	if o.state.CompareAndSwap(opQueued, opAbandoned) {
		return ctx.Err()
	}
	select {
	case err := <-o.done: // answered meanwhile
		return err
	default:
		return fmt.Errorf("sqlite: %w: %w", store.ErrOutcomeUnknown, ctx.Err())
	}
}

// writer is the one goroutine that writes. It takes one op, then every op
// that is already waiting (up to maxBatch), and commits them together: with
// synchronous=FULL the commit's fsync is most of the cost of a write, so
// callers that arrive while a commit is under way share the next one.
// With a commit delay it may also hold the batch open a little for writes
// that are announced and on their way (ExpectDecision); otherwise, and always
// when nothing is announced, a lone op is committed at once.
func (s *Store) writer() {
	defer close(s.writerDone)
	tx := &wtx{conn: s.wconn, stmts: map[string]*sql.Stmt{}}
	defer tx.close()

	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-s.ops:
			batch = append(batch[:0], o)
		case <-s.quit:
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break collect
			}
		}
		// With synchronous=FULL each commit pays an fsync that costs the
		// same for one op or many, and under load the host's flush slows
		// the cores for everyone (docs/performance.md, "Commit delay").
		batch = groupcommit.Hold(s.pacer, batch, maxBatch, s.ops, s.quit)
		s.runBatch(tx, batch)
		clear(batch) // drop the references so finished ops can be freed
	}
}

// ExpectDecision announces a decision: the caller has begun work that
// ends in one CommitDecision, such as a token request that will commit its
// decision once its token is signed. While announced decisions are still on
// their way, the writer holds its batch open for them, up to the commit
// delay (Options.CommitDelay), so that one fsync serves them all; see
// package groupcommit. Writes that are not announced are committed as they
// always were.
func (s *Store) ExpectDecision() store.Pending {
	s.pacer.ExpectWrite()
	return &pending{s: s}
}

// pending is an announced decision. Like the request it belongs to, it is
// used by one goroutine.
type pending struct {
	s       *Store
	settled bool
}

func (p *pending) Commit(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	rec, err := p.s.CommitDecision(ctx, now, d)
	if err == nil {
		p.Close()
	}
	return rec, err
}

func (p *pending) Close() {
	if !p.settled {
		p.settled = true
		p.s.pacer.WriteDone()
	}
}

// ExpectedWrites is the number of announced writes not yet settled.
func (s *Store) ExpectedWrites() int64 { return s.pacer.Expected() }

// runBatch runs the ops in the order they arrived, so that of two calls
// consuming the same jti the earlier wins, and answers every caller.
func (s *Store) runBatch(tx *wtx, batch []*op) {
	// A caller whose context ended before its batch started gets
	// ctx.Err() and nothing is written for it.
	var live []*op
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			if o.state.CompareAndSwap(opQueued, opAbandoned) {
				o.done <- err
			}
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	results := make([]error, len(live))
	if err := s.commitBatch(tx, live, results); err != nil {
		s.replay.reset()
		s.audit.reset()
		// Nothing of the batch was committed, whatever each op said.
		for _, o := range live {
			o.done <- err
		}
		return
	}
	s.replay.committed()
	// Counted before anyone is answered: a caller that reads the counters
	// after its write returned sees its own batch (tests rely on it).
	s.batches.Add(1)
	s.batchedOps.Add(int64(len(live)))
	for i, o := range live {
		o.done <- results[i]
	}
}

// commitBatch runs the ops in one transaction, each inside a savepoint, and
// stores each op's own error in results. It returns an error, having rolled
// everything back, when the transaction itself fails.
func (s *Store) commitBatch(tx *wtx, ops []*op, results []error) (err error) {
	// IMMEDIATE takes the write lock now: a deferred transaction that
	// reads first could fail with SQLITE_BUSY at its first write, without
	// the busy timeout, when another process wrote in between.
	if _, err := tx.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if err != nil {
			// After some errors (I/O, disk full) SQLite has already
			// rolled back and this fails; there is nothing more to do.
			tx.conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// The write lock is held: from here an op's caller waits for its
	// answer, or learns that the outcome is unknown. One that gave up
	// while the batch waited for the lock is left out, unwritten.
	taken := make([]bool, len(ops))
	for i, o := range ops {
		if taken[i] = o.state.CompareAndSwap(opQueued, opTaken); !taken[i] {
			results[i] = o.ctx.Err()
		}
	}
	for i, o := range ops {
		if !taken[i] {
			continue
		}
		if o.replay {
			if err := s.replay.sync(tx); err != nil {
				return fmt.Errorf("sqlite: read the jti log: %w", err)
			}
			break
		}
	}
	for i, o := range ops {
		if !taken[i] {
			continue
		}
		if o.replay {
			mark := s.replay.mark()
			if err := o.run(tx); err != nil {
				s.replay.rollbackTo(mark)
				var r *refusal
				if !errors.As(err, &r) {
					return fmt.Errorf("sqlite: write failed (%q)", err.Error())
				}
				results[i] = r.err
			}
			continue
		}
		if _, err := tx.exec("SAVEPOINT op"); err != nil {
			return fmt.Errorf("sqlite: savepoint: %w", err)
		}
		mark := s.replay.mark()
		if results[i] = o.run(tx); results[i] != nil {
			s.replay.rollbackTo(mark)
			if _, err := tx.exec("ROLLBACK TO op"); err != nil {
				// The op's error is quoted, not wrapped: it becomes
				// every caller's error, and a sentinel such as
				// store.ErrReplay would be false for the others.
				return fmt.Errorf("sqlite: write failed (%q), then rollback to savepoint: %w", results[i].Error(), err)
			}
		}
		if _, err := tx.exec("RELEASE op"); err != nil {
			return fmt.Errorf("sqlite: release savepoint: %w", err)
		}
	}
	if err := s.audit.flush(tx); err != nil {
		return err
	}
	if _, err := tx.exec("COMMIT"); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}
