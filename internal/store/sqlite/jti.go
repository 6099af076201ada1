package sqlite

import (
	"context"
	"fmt"
	"math"
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

// consumeJTI records a key unless a record of it exists that has not
// expired: the upsert overwrites an expired record and does nothing to a
// live one, so one affected row means recorded and none means replay. It
// is one statement, so there is no window between a check and a set.
const consumeJTI = `INSERT INTO jti (key, expires) VALUES (?1, ?2)
	ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE jti.expires <= ?3`

// ConsumeJTIs records the keys all together or not at all; see
// store.Store. A refusal wraps a *store.ReplayError naming the first spent
// key in the order given. Concurrent calls are committed together (see the
// package documentation); of two calls with the same key the one that
// reached the writer first wins.
func (s *Store) ConsumeJTIs(ctx context.Context, now time.Time, jtis []store.JTI) error {
	// The same key twice in one call is a replay whatever the store holds.
	// Checked here because the database would let the second through
	// when the key's own Expires is not after now. Calls carry two keys,
	// so the quadratic loop is the cheap one.
	for i := range jtis {
		for j := range i {
			if jtis[i].Key == jtis[j].Key {
				return fmt.Errorf("sqlite: twice in one call: %w", &store.ReplayError{Key: jtis[i].Key})
			}
		}
	}
	nowNanos := nanos(now)
	return s.write(ctx, func(tx *wtx) error {
		for _, j := range jtis {
			res, err := tx.exec(consumeJTI, j.Key, nanos(j.Expires), nowNanos)
			if err != nil {
				return fmt.Errorf("sqlite: consume jti %q: %w", j.Key, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: consume jti %q: %w", j.Key, err)
			}
			if n == 0 {
				// The op's savepoint is rolled back: the keys before
				// this one are not recorded either.
				return fmt.Errorf("sqlite: %w", &store.ReplayError{Key: j.Key})
			}
		}
		return nil
	})
}

// deleteChunk bounds the rows one cleanup statement removes, so that the
// writer goes back to the token endpoint's ConsumeJTIs calls in between.
const deleteChunk = 1000

// DeleteExpiredJTIs removes the keys whose Expires is not after before, in
// chunks of deleteChunk rows, each its own write.
func (s *Store) DeleteExpiredJTIs(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *wtx) error {
			res, err := tx.exec(`DELETE FROM jti WHERE key IN (
				SELECT key FROM jti WHERE expires <= ? LIMIT ?)`, nanos(before), deleteChunk)
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
			return total, nil
		}
	}
}
