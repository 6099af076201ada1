package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// headLog writes this instance's audit chain head to the server's log (the
// "audit head" line), which lives apart from the database: `tillit audit
// verify --head` then finds records removed together with the head that
// would have named them, such as a rollback of the whole database. Only
// records written after the last logged head can go unnoticed, so the head
// is logged every `every` records, as the record that reaches the count is
// committed, and by a job every head_log_interval if it moved, and when the
// server starts and stops.
type headLog struct {
	log      *slog.Logger
	instance string
	every    int64

	mu     sync.Mutex
	newest store.AuditHead // the newest head this server knows of
	logged int64           // Seq of the head logged last
}

// seen takes a record this instance appended.
func (h *headLog) seen(rec store.AuditRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rec.Seq <= h.newest.Seq {
		return // answered after a later one of its batch
	}
	h.newest = store.AuditHead{Instance: rec.Instance, Seq: rec.Seq, MAC: rec.MAC}
	if h.newest.Seq-h.logged >= h.every {
		h.write()
	}
}

// fromStore logs the head the store holds, when it is newer than the one
// logged last.
func (h *headLog) fromStore(ctx context.Context, st store.Store) error {
	tip, err := st.AuditTip(ctx, h.instance)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if tip.Head != nil && tip.Head.Seq > h.newest.Seq {
		h.newest = *tip.Head
	}
	if h.newest.Seq != h.logged {
		h.write()
	}
	return nil
}

func (h *headLog) write() {
	h.log.Info("audit head", "head", audit.FormatHead(h.newest), "instance", h.newest.Instance, "seq", h.newest.Seq)
	h.logged = h.newest.Seq
}

// watchedDecisions is the store as the token endpoints commit decisions
// to it: every record appended is shown to the head log, and every
// outcome to the write health that readiness reads. A mutex and an
// integer compare per decision.
type watchedDecisions struct {
	st     token.DecisionStore
	head   *headLog
	writes *writeHealth // the outcome of every commit, for readiness
}

func watchDecisions(st token.DecisionStore, head *headLog, writes *writeHealth) *watchedDecisions {
	return &watchedDecisions{st: st, head: head, writes: writes}
}

func (w *watchedDecisions) CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	rec, err := w.st.CommitDecision(ctx, now, d)
	if err == nil {
		w.head.seen(rec)
	}
	w.writes.observe(err)
	return rec, err
}

func (w *watchedDecisions) ExpectDecision() store.Pending {
	return watchedPending{w.st.ExpectDecision(), w.head, w.writes}
}

type watchedPending struct {
	store.Pending
	head   *headLog
	writes *writeHealth
}

func (p watchedPending) Commit(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	rec, err := p.Pending.Commit(ctx, now, d)
	if err == nil {
		p.head.seen(rec)
	}
	p.writes.observe(err)
	return rec, err
}
