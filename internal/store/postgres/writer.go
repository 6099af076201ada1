package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tillit-sts/tillit/internal/store"
)

// ErrClosed is returned by CommitDecision on a Store after Close.
var ErrClosed = errors.New("postgres: store closed")

// maxBatch bounds the decisions that share one transaction. Each runs in a
// subtransaction of its own (a savepoint), and PostgreSQL tracks up to 64
// subtransactions that wrote per transaction in shared memory; past that,
// every other session's snapshots get slower until the transaction ends.
const maxBatch = 64

// maxHeadRetries bounds the attempts at one decision whose record keeps
// finding the chain head moved, or that keeps losing a deadlock. The head
// moves under a Store only when two running processes share an instance
// name, which the configuration forbids.
const maxHeadRetries = 3

// States of a decisionOp: queued until the writer takes it into a batch,
// taken until the batch has a connection and sends the op's statement
// (sent), abandoned when its caller gave up waiting before that. A caller
// that gives up later does not know whether its decision was committed
// (store.ErrOutcomeUnknown).
const (
	opQueued int32 = iota
	opTaken
	opSent
	opAbandoned
)

// decisionOp is one CommitDecision call, from the caller to its chain's
// writer.
type decisionOp struct {
	ctx     context.Context
	now     time.Time
	jtis    []store.JTI
	hashes  [][]byte // SHA-256 of each jti, as the jti table keeps them
	expires []time.Time
	rot     *store.Rotation
	revoke  string            // the family to revoke, if any
	rec     store.AuditRecord // storable (textRecord), not sealed
	state   atomic.Int32
	done    chan decisionResult // one slot: the writer never blocks on it

	// The writer's, while the op is in a batch: the record as sealed for
	// the statement in flight, and the answer once it is decided, given
	// when the batch has committed.
	sealed  store.AuditRecord
	res     decisionResult
	settled bool
}

type decisionResult struct {
	rec store.AuditRecord
	err error
}

func (o *decisionOp) settle(rec store.AuditRecord, err error) {
	o.res, o.settled = decisionResult{rec, err}, true
}

// chain is one instance's audit chain as this Store appends to it: the
// decisions waiting for its writer, and the writer's copy of its head.
//
// A record's MAC covers the one before it, so a chain's records are sealed
// strictly in commit order, and a decision that is refused must leave no
// gap. One writer goroutine per chain does that, and commits every
// decision that waits, up to maxBatch, in one transaction (see runBatch):
// with a durable commit the WAL flush is most of a decision's cost, and
// they share it. Chains have writers of their own, so instances do not
// wait for each other.
type chain struct {
	instance string
	wake     chan struct{} // one slot: the queue may hold something

	mu     sync.Mutex
	queue  []*decisionOp
	closed bool

	// head is the writer's copy of the chain's head, so that a decision
	// needs no read before its write. Every statement checks it against
	// the database: a stale copy (another process appended under the
	// same instance name) costs a read and a retry, never a broken chain.
	// known is false until the first read, and again after a batch whose
	// outcome was lost with its connection.
	head  store.AuditHead
	known bool
}

// enqueue adds o for the writer, or reports false after Close.
func (ch *chain) enqueue(o *decisionOp) bool {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return false
	}
	ch.queue = append(ch.queue, o)
	ch.mu.Unlock()
	select {
	case ch.wake <- struct{}{}:
	default:
	}
	return true
}

// take removes up to n decisions from the queue, in the order they came,
// leaving out those whose callers gave up.
func (ch *chain) take(n int) []*decisionOp {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var batch []*decisionOp
	i := 0
	for ; i < len(ch.queue) && len(batch) < n; i++ {
		if o := ch.queue[i]; o.state.CompareAndSwap(opQueued, opTaken) {
			batch = append(batch, o)
		}
	}
	rest := copy(ch.queue, ch.queue[i:])
	clear(ch.queue[rest:])
	ch.queue = ch.queue[:rest]
	return batch
}

// shut refuses what is queued and everything later.
func (ch *chain) shut() {
	ch.mu.Lock()
	ch.closed = true
	queue := ch.queue
	ch.queue = nil
	ch.mu.Unlock()
	for _, o := range queue {
		if o.state.CompareAndSwap(opQueued, opTaken) {
			o.done <- decisionResult{o.rec, ErrClosed}
		}
	}
}

// chains are the chains a Store appends to, each with its writer.
type chains struct {
	mu     sync.Mutex
	m      map[string]*chain
	closed bool
	quit   chan struct{} // closed by close
	wg     sync.WaitGroup
}

// get returns instance's chain, starting its writer the first time.
func (c *chains) get(s *Store, instance string) (*chain, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.m == nil {
		c.m = map[string]*chain{}
		c.quit = make(chan struct{})
	}
	ch := c.m[instance]
	if ch == nil {
		ch = &chain{instance: instance, wake: make(chan struct{}, 1), head: store.AuditHead{Instance: instance}}
		c.m[instance] = ch
		c.wg.Add(1)
		go s.write(ch)
	}
	return ch, nil
}

// close stops the writers once their batches are done; decisions still
// queued get ErrClosed.
func (c *chains) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.quit != nil {
			close(c.quit)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// writeStats count the writers' work, for tests and benchmarks.
type writeStats struct {
	transactions atomic.Int64 // transactions ended (committed or not)
	decisions    atomic.Int64 // decisions answered from a batch
	deadlocks    atomic.Int64 // statements the server aborted to break a deadlock
}

// statsSnapshot is writeStats at one moment.
type statsSnapshot struct{ transactions, decisions int64 }

func (s *Store) stats() statsSnapshot {
	return statsSnapshot{s.writes.transactions.Load(), s.writes.decisions.Load()}
}

// write is ch's writer: it takes every decision that waits and commits
// them as one batch, until Close. There is no timer: a lone decision is
// committed at once, and those that arrive meanwhile wait for the next
// batch.
func (s *Store) write(ch *chain) {
	defer s.chains.wg.Done()
	for {
		select {
		case <-ch.wake:
		case <-s.chains.quit:
			ch.shut()
			return
		}
		for {
			select {
			case <-s.chains.quit:
				ch.shut()
				return
			default:
			}
			batch := ch.take(maxBatch)
			if len(batch) == 0 {
				break
			}
			s.runBatch(ch, batch)
		}
	}
}

// Names of the statements the writer prepares on each connection it uses.
// Prepared by name, they stay prepared when a batch fails; pgx's statement
// cache would drop every statement of a failed batch, and a refused
// decision fails its statement by design.
const (
	stmtBegin      = "tillit_begin"
	stmtSavepoint  = "tillit_savepoint"
	stmtRollbackTo = "tillit_rollback_to"
	stmtCommit     = "tillit_commit"
	stmtLockFamily = "tillit_lock_family"
	stmtLockAll    = "tillit_lock_families"
	stmtReadHead   = "tillit_read_head"
)

var writerStatements = []struct{ name, sql string }{
	{stmtCommitDecision, commitDecision},
	{stmtCommitPlain, commitPlain},
	{stmtLockFamily, lockFamily},
	{stmtLockAll, lockFamilies},
	{stmtReadHead, tipQuery},
	{stmtBegin, "BEGIN"},
	{stmtSavepoint, "SAVEPOINT decision"},
	{stmtRollbackTo, "ROLLBACK TO SAVEPOINT decision"},
	{stmtCommit, "COMMIT"},
}

// runBatch commits a batch and answers every decision in it, in the order
// they came, as if each had been committed alone.
//
// A lone decision is what it always was: its family's lock, when it
// rotates, and its statement, as one pipelined batch in one implicit
// transaction, one round trip.
//
// Several decisions share one transaction block, each in a savepoint of
// its own: the statement raises to refuse a decision (a spent jti) or when
// its record was sealed on a head that is not the chain's, and a savepoint
// confines that to its decision. The writer seals each record on the head
// as it will be if every decision before it in the batch is written, and
// sends everything, BEGIN to COMMIT, as one pipeline: one round trip, one
// WAL flush. When a statement raises, the server skips the rest of the
// pipeline, COMMIT included, and the block waits in its failed state; the
// writer then sends what was skipped, after ROLLBACK TO SAVEPOINT and
// sealed on the head as it now is, as the next pipeline in the same
// transaction. So a batch costs one round trip, plus one for each
// decision refused by raising, and for each written one that follows a
// refusal that did not raise (its seal assumed a record that is not
// there).
//
// Answers are given once the transaction has committed. When it fails,
// every decision of the batch gets the error; when its outcome is not
// known (the connection failed), the head is read again before the next
// batch.
func (s *Store) runBatch(ch *chain, batch []*decisionOp) {
	ops := make([]*decisionOp, 0, len(batch))
	for _, o := range batch {
		// Taken, but not started: the caller may still be told that
		// nothing was written.
		if err := o.ctx.Err(); err != nil {
			o.done <- decisionResult{o.rec, fmt.Errorf("postgres: commit decision: %w", err)}
			continue
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		return
	}
	ctx, cancel := batchContext(ops)
	defer cancel()
	err := s.commitBatch(ctx, ch, ops)
	for _, o := range ops {
		switch {
		case err != nil && o.state.Load() == opSent && sqlState(err) == "":
			// Sent, and then the connection failed or the batch ran
			// out of time: the transaction may have committed.
			o.res = decisionResult{o.rec, fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, err)}
		case err != nil:
			o.res = decisionResult{o.rec, err}
		case !o.settled:
			o.res = decisionResult{o.rec, errors.New("postgres: commit decision: the batch ended without deciding it")}
		}
		s.writes.decisions.Add(1)
		o.done <- o.res
	}
	if err != nil {
		ch.known = false
	}
}

// batchRun is one batch as it runs on its connection.
type batchRun struct {
	s    *Store
	ch   *chain
	ctx  context.Context
	conn *pgx.Conn
	// block: the batch is one transaction block with a savepoint per
	// decision; otherwise one decision in an implicit transaction.
	block  bool
	begun  bool            // BEGIN has been sent
	broken bool            // a statement failed: the block needs ROLLBACK TO
	head   store.AuditHead // the head after the decisions written so far
}

// commitBatch decides every op (settle) and commits what they wrote. An
// error is the batch's: nothing it wrote is committed, or whether it was
// is not known.
func (s *Store) commitBatch(ctx context.Context, ch *chain, ops []*decisionOp) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: commit decision: %w", err)
	}
	// A connection left inside a transaction block (the batch failed) is
	// closed, not reused: the server rolls the block back.
	defer pc.Release()
	r := &batchRun{s: s, ch: ch, ctx: ctx, conn: pc.Conn(), block: len(ops) > 1}
	for _, st := range writerStatements {
		if _, err := r.conn.Prepare(ctx, st.name, st.sql); err != nil {
			return fmt.Errorf("postgres: commit decision: prepare: %w", err)
		}
	}
	if !ch.known {
		if err := r.readHead(); err != nil {
			return err
		}
	}
	r.head = ch.head
	// From here the statements go out: a caller still waiting is told
	// the answer, or that it is unknown. One that gave up while the
	// batch got its connection is left out, unwritten.
	pending := ops[:0:0]
	for _, o := range ops {
		if o.state.CompareAndSwap(opTaken, opSent) {
			pending = append(pending, o)
		} else {
			o.settle(o.rec, fmt.Errorf("postgres: commit decision: %w", o.ctx.Err()))
		}
	}
	if len(pending) == 0 {
		return nil
	}
	r.block = len(pending) > 1
	retries := 0
	for {
		out, err := r.round(pending)
		if err != nil {
			return err
		}
		pending = out.rest
		if out.progress {
			retries = 0
		}
		if out.committed {
			break
		}
		switch out.stop {
		case stopStale, stopDeadlock:
			if retries++; retries >= maxHeadRetries {
				err := fmt.Errorf("postgres: the audit chain of instance %q moved under every attempt to append: is another running server using the same instance name?", ch.instance)
				if out.stop == stopDeadlock {
					err = fmt.Errorf("postgres: commit decision: deadlocked %d times", retries)
				}
				pending[0].settle(pending[0].rec, err)
				pending, retries = pending[1:], 0
			}
		}
		if out.stop == stopStale {
			if err := r.readHead(); err != nil {
				return err
			}
		}
		if !r.block && len(pending) == 0 {
			break // the one decision is settled, and wrote nothing
		}
	}
	ch.head, ch.known = r.head, true
	return nil
}

// readHead reads the chain's head into r.head and ch.head: in a block,
// after rolling back the statement that found it moved, so that the read
// sees what the others committed. With the head it reads the chain's
// newest record: a chain whose head and newest record disagree (changed
// outside the store) fails the batch with store.ErrAuditChainBroken, and
// every later one until it is resealed, rather than be forked or
// restarted.
func (r *batchRun) readHead() error {
	h := store.AuditHead{Instance: r.ch.instance}
	b := &pgx.Batch{}
	if r.broken {
		b.Queue(stmtRollbackTo)
	}
	b.Queue(stmtReadHead, r.ch.instance)
	br := r.conn.SendBatch(r.ctx, b)
	var err error
	if r.broken {
		_, err = br.Exec()
	}
	var head, last *store.AuditHead
	if err == nil {
		head, last, err = scanTip(br.QueryRow(), r.ch.instance)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgres: read audit head: %w", err)
	}
	if err := store.CheckAuditTip(r.ch.instance, head, last); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if head != nil {
		h = *head
	}
	r.broken = false
	r.head, r.ch.head, r.ch.known = h, h, true
	return nil
}

// Why a round stopped before its end.
const (
	stopNone     = iota
	stopSettled  // a statement refused its decision by raising: settled
	stopReseal   // a record was sealed on one a refusal did not write
	stopStale    // a record was sealed on r.head, which is not the chain's
	stopDeadlock // the server aborted a statement to break a deadlock
)

// roundResult is what a round did.
type roundResult struct {
	rest      []*decisionOp // still to run
	stop      int
	progress  bool // some decision was settled
	committed bool // the transaction has committed: the batch is done
}

// round seals pending on r.head, sends their statements as one pipeline
// and settles them in order, up to the first statement that the server
// aborted. In a block the pipeline ends with COMMIT, which the server
// skips if a statement was aborted before it.
func (r *batchRun) round(pending []*decisionOp) (out roundResult, err error) {
	h := r.head
	for _, o := range pending {
		o.sealed = o.rec
		r.s.auditKey.Seal(&o.sealed, h.Seq, h.MAC)
		if o.sealed.Prev == nil {
			o.sealed.Prev = []byte{}
		}
		h = store.AuditHead{Instance: r.ch.instance, Seq: o.sealed.Seq, MAC: o.sealed.MAC}
	}
	b := &pgx.Batch{}
	var pre []string // statements before the decisions'
	var fams []string
	switch {
	case !r.block:
	case !r.begun:
		// A block takes the locks of all its families first, in one
		// order (lockFamilies); each decision's own lock statement then
		// finds its lock held. Taken outside any savepoint, they last
		// until the transaction ends, through later rounds too.
		pre = []string{stmtBegin}
		if fams = families(pending); len(fams) > 1 {
			pre = append(pre, stmtLockAll)
		}
		pre = append(pre, stmtSavepoint)
	case r.broken:
		pre = []string{stmtRollbackTo}
	}
	for _, name := range pre {
		if name == stmtLockAll {
			b.Queue(name, refreshLockClass, fams)
			continue
		}
		b.Queue(name)
	}
	for i, o := range pending {
		if fam := o.family(); fam != "" {
			b.Queue(stmtLockFamily, refreshLockClass, fam)
		}
		name, args := o.statement()
		b.Queue(name, args...)
		if r.block && i < len(pending)-1 {
			b.Queue(stmtSavepoint)
		}
	}
	if r.block {
		b.Queue(stmtCommit)
	}
	br := r.conn.SendBatch(r.ctx, b)
	defer func() {
		// Close ends the pipeline. Outside a block it also ends the
		// implicit transaction: only a nil error from it means that
		// the decision is committed.
		cerr := br.Close()
		if !r.block && out.stop == stopNone {
			r.s.writes.transactions.Add(1)
			if err == nil && cerr != nil {
				err = fmt.Errorf("postgres: commit decision: %w", cerr)
			}
			out.committed = err == nil
		}
	}()
	for _, name := range pre {
		if _, err := br.Exec(); err != nil {
			return out, fmt.Errorf("postgres: commit decision: %s: %w", name, err)
		}
	}
	if len(pre) > 0 {
		r.begun, r.broken = true, false
	}
	refused := false // a decision before this one in the round wrote no record
	for i, o := range pending {
		var (
			verdict        string
			family, raised *string
			err            error
		)
		if o.family() != "" {
			_, err = br.Exec()
		}
		if err == nil {
			err = br.QueryRow().Scan(&verdict, &family, &raised)
		}
		if err != nil {
			return r.aborted(out, pending, i, refused, err)
		}
		out.progress = true
		if verdict == "ok" || verdict == "retry" {
			r.head = store.AuditHead{Instance: r.ch.instance, Seq: o.sealed.Seq, MAC: o.sealed.MAC}
			o.settle(o.sealed, nil)
		} else {
			fam := ""
			if family != nil {
				fam = *family
			}
			o.settle(o.rec, o.refusal(verdict, fam))
			refused = true
		}
		if r.block && i < len(pending)-1 {
			if _, err := br.Exec(); err != nil {
				return out, fmt.Errorf("postgres: commit decision: savepoint: %w", err)
			}
		}
	}
	if r.block {
		_, err := br.Exec()
		r.s.writes.transactions.Add(1)
		if err != nil {
			return out, fmt.Errorf("postgres: commit decision: commit: %w", err)
		}
		out.committed = true
	}
	return out, nil
}

// families lists the refresh-token families that ops lock, each once.
func families(ops []*decisionOp) []string {
	var fams []string
	for _, o := range ops {
		if f := o.family(); f != "" && !slices.Contains(fams, f) {
			fams = append(fams, f)
		}
	}
	return fams
}

// aborted handles the statement of pending[i] that the server aborted with
// err, which rolled back that decision alone: in a block its savepoint,
// otherwise the implicit transaction, which held that decision alone.
func (r *batchRun) aborted(out roundResult, pending []*decisionOp, i int, refused bool, err error) (roundResult, error) {
	code := sqlState(err)
	if code == "" {
		// Not the server's answer (the connection failed, the context
		// ended): nothing says what was committed.
		return out, fmt.Errorf("postgres: commit decision: %w", err)
	}
	if r.block {
		r.broken = true
	} else {
		r.s.writes.transactions.Add(1)
	}
	out.rest = pending[i:]
	switch {
	case code == codeHeadMoved && refused:
		out.stop = stopReseal
	case code == codeHeadMoved:
		out.stop = stopStale
	case code == codeDeadlock, code == codeSerialization:
		// Two transactions took the same jtis or families in opposite
		// orders (two batches, on two instances); the server aborted
		// this statement to let the other go on. It is run again.
		out.stop = stopDeadlock
		r.s.writes.deadlocks.Add(1)
	default:
		pending[i].settle(pending[i].rec, pending[i].failure(err))
		out.rest, out.stop, out.progress = pending[i+1:], stopSettled, true
	}
	return out, nil
}

// maxBatchTime bounds a batch whose callers set no deadline (an HTTP
// request's context has none): a database that stops answering must give
// its callers an error, not hold them, and the writer, for ever.
const maxBatchTime = 30 * time.Second

// batchContext bounds a batch's work on the database by its callers'
// deadlines: it ends at the latest of them, and within maxBatchTime. A
// caller's own cancellation does not stop a batch that holds other
// callers' decisions.
func batchContext(ops []*decisionOp) (context.Context, context.CancelFunc) {
	limit := time.Now().Add(maxBatchTime)
	var last time.Time
	for _, o := range ops {
		d, ok := o.ctx.Deadline()
		if !ok || d.After(limit) {
			last = limit
			break
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.Background(), last)
}
