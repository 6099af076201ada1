package sqlite

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// nanos converts a jti expiry or now to unix nanoseconds. Expiries are
// only compared, never handed back, so they keep full precision; times
// outside the int64 range (years before 1678 or after 2262) are clamped,
// which keeps their order.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// replaySet is the writer goroutine's copy of the unexpired jti keys, so
// that checking a key costs a map lookup and recording it an append to
// jti_log (see the migration). Only the writer goroutine touches it, always
// inside a write transaction, which also holds SQLite's write lock: before
// the first check of a batch it reads the rows other processes appended
// since it last looked, so its view is complete while it decides.
//
// Memory: one entry per unexpired key, about 100 bytes; a token costs two
// keys remembered for about a minute, so 1,000 tokens/s hold about 12 MB.
type replaySet struct {
	keys    map[string]int64 // key → expires, unix nanoseconds
	lastSeq int64            // the highest jti_log.seq in keys
	// undo records what the current batch changed in keys, so that a
	// failed op or a failed commit can be taken back.
	undo []undoEntry
	// seq is the highest seq written by the current batch.
	seq int64
}

type undoEntry struct {
	key     string
	old     int64
	existed bool
}

func newReplaySet() *replaySet { return &replaySet{keys: map[string]int64{}} }

// sync reads the rows appended since lastSeq, by any process. It runs at
// the start of every batch that consumes jtis.
func (r *replaySet) sync(tx *wtx) error {
	st, err := tx.stmt(`SELECT seq, key, expires FROM jti_log WHERE seq > ? ORDER BY seq`)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(context.Background(), r.lastSeq)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq, exp int64
		var key string
		if err := rows.Scan(&seq, &key, &exp); err != nil {
			return err
		}
		if old, ok := r.keys[key]; !ok || exp > old {
			r.keys[key] = exp
		}
		r.lastSeq = seq
	}
	r.seq = r.lastSeq
	return rows.Err()
}

func (r *replaySet) set(key string, exp int64) {
	old, existed := r.keys[key]
	r.undo = append(r.undo, undoEntry{key, old, existed})
	r.keys[key] = exp
}

// mark and rollbackTo take back one op's changes.
func (r *replaySet) mark() int { return len(r.undo) }

func (r *replaySet) rollbackTo(mark int) {
	for i := len(r.undo) - 1; i >= mark; i-- {
		u := r.undo[i]
		if u.existed {
			r.keys[u.key] = u.old
		} else {
			delete(r.keys, u.key)
		}
	}
	r.undo = r.undo[:mark]
}

// committed keeps the batch's changes.
func (r *replaySet) committed() {
	r.undo = r.undo[:0]
	r.lastSeq = r.seq
}

// reset forgets everything after a failed commit: the next batch reads the
// whole log again, which is slow once and always right.
func (r *replaySet) reset() {
	*r = replaySet{keys: map[string]int64{}}
}

// ConsumeJTIs records the keys all together or not at all; see
// store.Store. A refusal wraps a *store.ReplayError naming the first spent
// key in the order given. Concurrent calls are committed together (see the
// package documentation); of two calls with the same key the one that
// reached the writer first wins.
func (s *Store) ConsumeJTIs(ctx context.Context, now time.Time, jtis []store.JTI) error {
	// The same key twice in one call is a replay whatever the store holds.
	// Calls carry two keys, so the quadratic loop is the cheap one.
	for i := range jtis {
		for j := range i {
			if jtis[i].Key == jtis[j].Key {
				return fmt.Errorf("sqlite: twice in one call: %w", &store.ReplayError{Key: jtis[i].Key})
			}
		}
	}
	if len(jtis) == 0 {
		return nil
	}
	nowNanos := nanos(now)
	return s.writeOp(ctx, true, func(tx *wtx) error { return s.spendJTIs(tx, nowNanos, jtis) })
}

// spendJTIs checks the keys against the in-memory replay set and, when all
// are free, records them with one INSERT. It runs on the writer goroutine.
func (s *Store) spendJTIs(tx *wtx, nowNanos int64, jtis []store.JTI) error {
	if err := s.checkJTIs(nowNanos, jtis); err != nil {
		return err
	}
	return s.recordJTIs(tx, jtis)
}

// checkJTIs refuses the first key that is spent and unexpired. It writes
// nothing, so a caller may check before it decides to write.
func (s *Store) checkJTIs(nowNanos int64, jtis []store.JTI) error {
	for _, j := range jtis {
		if exp, ok := s.replay.keys[j.Key]; ok && exp > nowNanos {
			return refuse(fmt.Errorf("sqlite: %w", &store.ReplayError{Key: j.Key}))
		}
	}
	return nil
}

// recordJTIs appends checked keys to the log and the in-memory set.
func (s *Store) recordJTIs(tx *wtx, jtis []store.JTI) error {
	if len(jtis) == 0 {
		return nil
	}
	r := s.replay
	args := make([]any, 0, 2*len(jtis))
	for _, j := range jtis {
		exp := nanos(j.Expires)
		args = append(args, j.Key, exp)
		r.set(j.Key, exp)
	}
	res, err := tx.exec(insertJTIs(len(jtis)), args...)
	if err != nil {
		return fmt.Errorf("sqlite: consume jtis: %w", err)
	}
	last, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sqlite: consume jtis: %w", err)
	}
	r.seq = last
	return nil
}

// insertJTIs is one INSERT for n keys: one statement per call, whatever n.
func insertJTIs(n int) string {
	if n == 2 {
		return insertTwoJTIs
	}
	return "INSERT INTO jti_log (key, expires) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")
}

const insertTwoJTIs = "INSERT INTO jti_log (key, expires) VALUES (?, ?), (?, ?)"

// deleteChunk bounds the rows one cleanup statement removes, so that the
// writer goes back to the token endpoint's ConsumeJTIs calls in between.
const deleteChunk = 1000

// DeleteExpiredJTIs removes the keys whose Expires is not after before, in
// chunks of deleteChunk rows, each its own write, and forgets them in memory.
func (s *Store) DeleteExpiredJTIs(ctx context.Context, before time.Time) (int64, error) {
	limit := nanos(before)
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *wtx) error {
			res, err := tx.exec(`DELETE FROM jti_log WHERE seq IN (
				SELECT seq FROM jti_log WHERE expires <= ? LIMIT ?)`, limit, deleteChunk)
			if err != nil {
				return fmt.Errorf("sqlite: delete expired jtis: %w", err)
			}
			n, err = res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: delete expired jtis: %w", err)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < deleteChunk {
			break
		}
	}
	// The in-memory copy drops the same keys; expired ones would be free
	// anyway, this only bounds memory.
	err := s.write(ctx, func(tx *wtx) error {
		for k, exp := range s.replay.keys {
			if exp <= limit {
				delete(s.replay.keys, k)
			}
		}
		return nil
	})
	return total, err
}
