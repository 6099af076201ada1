package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
)

// TestBatchOutcomes hands the writer one batch in which every kind of
// outcome follows every other: decisions written, refused by a statement
// that raises (a spent jti: its savepoint is rolled back and the rest of
// the pipeline sent again), refused without raising (a reused refresh
// token: the family is revoked, no record written, and the records sealed
// after it are sealed again), and one whose caller gave up before the
// batch ran. Each must get the answer it would have got alone, and the
// chain must hold exactly the written records, in batch order, intact.
func TestBatchOutcomes(t *testing.T) {
	s := openTest(t, pgtest.URL(t), Options{AuditKey: storetest.AuditKey})
	if err := s.ConsumeJTIs(bg, now, jti("spent")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshToken(bg, refresh("rt-1", "fam")); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(bg, now, "rt-1", refresh("rt-2", "fam")); err != nil {
		t.Fatal(err)
	}

	gone, cancel := context.WithCancel(bg)
	type row struct {
		ctx     context.Context
		d       store.Decision
		wantErr error // nil: written
	}
	written := func(i int) row {
		return row{bg, store.Decision{JTIs: jti(fmt.Sprintf("b%d", i)), Audit: auditRecord("mixed", i)}, nil}
	}
	replay := func(i int) row {
		return row{bg, store.Decision{JTIs: append(jti(fmt.Sprintf("b%d", i)), jti("spent")...), Audit: auditRecord("mixed", i)}, store.ErrReplay}
	}
	rows := []row{
		written(0),
		replay(1),
		written(2),
		{bg, store.Decision{JTIs: jti("b3"), Rotate: &store.Rotation{OldID: "rt-1", Next: refresh("rt-3", "fam")},
			Audit: auditRecord("mixed", 3)}, store.ErrRefreshReused},
		written(4),
		{gone, store.Decision{JTIs: jti("b5"), Audit: auditRecord("mixed", 5)}, context.Canceled},
		written(6),
		{bg, store.Decision{Audit: auditRecord("mixed", 7)}, nil}, // a refusal's record: no jtis
		replay(8),
	}
	ops := make([]*decisionOp, len(rows))
	for i, r := range rows {
		o, err := s.newDecision(r.ctx, now, r.d)
		if err != nil {
			t.Fatal(err)
		}
		o.state.Store(opTaken)
		ops[i] = o
	}
	cancel()
	ch, err := s.chains.get(s, "mixed")
	if err != nil {
		t.Fatal(err)
	}
	before := s.stats()
	s.runBatch(ch, ops)

	var seq int64
	for i, r := range rows {
		res := <-ops[i].done
		switch {
		case r.wantErr == nil && res.err != nil:
			t.Errorf("decision %d: %v, want it written", i, res.err)
		case r.wantErr != nil && !errors.Is(res.err, r.wantErr):
			t.Errorf("decision %d: err = %v, want %v", i, res.err, r.wantErr)
		case r.wantErr == nil:
			if seq++; res.rec.Seq != seq || res.rec.RequestID != fmt.Sprintf("req-%d", i) {
				t.Errorf("decision %d: record %s at %d, want at %d", i, res.rec.RequestID, res.rec.Seq, seq)
			}
		}
	}
	if st := s.stats(); st.transactions-before.transactions != 1 {
		t.Errorf("the batch took %d transactions, want 1", st.transactions-before.transactions)
	}
	verifyAudit(t, s, "mixed", seq)

	// What the refused decisions wrote: the reused token's family is
	// revoked; the spent and abandoned decisions' fresh jtis are not.
	if rt, err := s.RefreshToken(bg, "rt-2"); err != nil || rt.Status != store.RefreshRevoked {
		t.Errorf("rt-2 after reuse of rt-1: %+v, %v; want revoked", rt.Status, err)
	}
	for _, key := range []string{"b1", "b5", "b8"} {
		if err := s.ConsumeJTIs(bg, now, jti(key)); err != nil {
			t.Errorf("jti %s of a refused decision: %v, want unspent", key, err)
		}
	}
	if err := s.ConsumeJTIs(bg, now, jti("b0")); !errors.Is(err, store.ErrReplay) {
		t.Errorf("jti b0 of a written decision: %v, want spent", err)
	}
}

// TestCloseRefusesQueued closes a Store while decisions wait for a writer
// that is busy: they are answered ErrClosed, nothing is left waiting, and
// later calls fail at once.
func TestCloseRefusesQueued(t *testing.T) {
	s := openTest(t, pgtest.URL(t), Options{AuditKey: storetest.AuditKey})
	const n = 32
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.CommitDecision(bg, now, store.Decision{JTIs: jti(fmt.Sprintf("c%d", i)), Audit: auditRecord("closing", i)})
			errs <- err
		}()
	}
	// Some were committed, some may still be queued: both are fine, as
	// long as every call returns and the chain holds exactly those
	// reported written.
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	s.chains.close()
	ok := int64(1)
	for range n - 1 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case !errors.Is(err, ErrClosed):
			t.Errorf("queued at Close: %v, want %v", err, ErrClosed)
		}
	}
	if _, err := s.CommitDecision(bg, now, store.Decision{Audit: auditRecord("closing", n)}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want %v", err, ErrClosed)
	}
	verifyAudit(t, s, "closing", ok)
}

// TestBatchContext: a batch ends at its callers' latest deadline, and
// within maxBatchTime when a caller has none or a later one, so that a
// database that stops answering cannot hold the writer for ever.
func TestBatchContext(t *testing.T) {
	start := time.Now()
	in := func(d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(bg, start.Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name string
		ctxs []context.Context
		want time.Duration // from start
	}{
		{"one deadline", []context.Context{in(time.Second)}, time.Second},
		{"the latest of several", []context.Context{in(time.Second), in(3 * time.Second), in(2 * time.Second)}, 3 * time.Second},
		{"a caller without one", []context.Context{in(time.Second), bg}, maxBatchTime},
		{"a deadline beyond the bound", []context.Context{in(time.Hour)}, maxBatchTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := make([]*decisionOp, len(tt.ctxs))
			for i, c := range tt.ctxs {
				ops[i] = &decisionOp{ctx: c}
			}
			ctx, cancel := batchContext(ops)
			defer cancel()
			got, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			// maxBatchTime counts from the call, a moment after start.
			if d := got.Sub(start.Add(tt.want)); d < 0 || d > time.Second {
				t.Errorf("deadline %v after start, want %v", got.Sub(start), tt.want)
			}
		})
	}
}

// TestFamilyLocksInOneOrder: two instances' batches that revoke the same
// two families, named in opposite orders, take the family locks in one
// order (lockFamilies), so the server never has to break a deadlock
// between them. Taken in arrival order they deadlock in some rounds, and
// each such round costs the server's deadlock_timeout (1 s).
func TestFamilyLocksInOneOrder(t *testing.T) {
	url := pgtest.URL(t)
	a := openTest(t, url, Options{AuditKey: storetest.AuditKey})
	b := openTest(t, url, Options{AuditKey: storetest.AuditKey})
	const rounds = 20
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, st := range []*Store{a, b} {
			instance := fmt.Sprintf("lock-order-%d", i)
			fams := []string{"fam-x", "fam-y"}
			if i == 1 {
				fams = []string{"fam-y", "fam-x"}
			}
			ops := make([]*decisionOp, len(fams))
			for j, fam := range fams {
				o, err := st.newDecision(bg, now, store.Decision{RevokeFamily: fam, Audit: auditRecord(instance, round*2+j)})
				if err != nil {
					t.Fatal(err)
				}
				o.state.Store(opTaken)
				ops[j] = o
			}
			ch, err := st.chains.get(st, instance)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				<-start
				st.runBatch(ch, ops)
				for _, o := range ops {
					if res := <-o.done; res.err != nil {
						t.Errorf("round %d, %s: %v", round, instance, res.err)
					}
				}
			})
		}
		close(start)
		wg.Wait()
	}
	if n := a.writes.deadlocks.Load() + b.writes.deadlocks.Load(); n != 0 {
		t.Errorf("the server broke %d deadlocks between the two instances' batches", n)
	}
	verifyAudit(t, a, "lock-order-0", 2*rounds)
	verifyAudit(t, b, "lock-order-1", 2*rounds)
}
