package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tillit-sts/tillit/internal/store"
)

// consumeJTIs records the keys ($1, SHA-256 hashes) with their expiries
// ($2) at now ($3) in one statement, and so in one round trip and one
// transaction:
//
//   - INSERT ... ON CONFLICT is the replay check. A key held by another
//     caller's uncommitted insert makes this one wait for that caller's
//     outcome, so of concurrent callers, on any instance, exactly one
//     records a key. A recorded key whose expiry is not after now is free:
//     DO UPDATE takes it over. An unexpired one is left as it is (the
//     WHERE fails) and is missing from RETURNING.
//   - The keys are inserted in hash order, so that two calls that share
//     keys lock them in the same order and cannot deadlock.
//   - If any key is missing from RETURNING, the final SELECT calls
//     tillit_jti_spent with the position of the first such key in the
//     caller's order, which raises an error: the statement fails and the
//     keys it did insert are rolled back with it. All or nothing, without
//     a transaction block.
//
// The final SELECT's LIMIT is in a subquery so that the function runs for
// the first missing key only.
const consumeJTIs = `
WITH ` + spendJTIs + `
SELECT tillit_jti_spent(first.pos) FROM (
	SELECT pos FROM input
	WHERE key_hash NOT IN (SELECT key_hash FROM recorded)
	ORDER BY pos LIMIT 1
) AS first`

// spendJTIs is the replay check of consumeJTIs and commitPlain, as
// described at consumeJTIs: input lists the keys ($1, $2) in the caller's
// order, recorded those it spent at now ($3).
const spendJTIs = `input AS (
	SELECT key_hash, expires, pos
	FROM unnest($1::bytea[], $2::timestamptz[]) WITH ORDINALITY AS t(key_hash, expires, pos)
), recorded AS (
	INSERT INTO jti AS j (key_hash, expires)
	SELECT key_hash, expires FROM input ORDER BY key_hash
	ON CONFLICT (key_hash) DO UPDATE SET expires = excluded.expires
	WHERE j.expires <= $3
	RETURNING j.key_hash
)`

// stmtConsumeJTIs is the name consumeJTIs is prepared under, once per
// connection. pgx would prepare and cache it by itself, as it does the
// other statements, but it drops a statement from that cache whenever it
// fails, so that the next call pays two more round trips (deallocate,
// prepare again). A refused ConsumeJTIs fails by design, and must not make
// the next token slower. Prepare by name is idempotent: after the first
// time on a connection it costs no round trip.
const stmtConsumeJTIs = "tillit_consume_jtis"

// ConsumeJTIs records the keys all together or not at all; see
// store.Store. A refusal wraps a *store.ReplayError naming the first spent
// key in the order given. It is one statement: one round trip, one
// commit.
//
// Times are compared at the database's microsecond precision. An expiry
// is rounded up to the next microsecond, so that a key is never free
// before its Expires; it may be held up to a microsecond longer.
func (s *Store) ConsumeJTIs(ctx context.Context, now time.Time, jtis []store.JTI) error {
	// The same key twice in one call is a replay whatever the store holds
	// (and one INSERT cannot take over a row twice). Calls carry two
	// keys, so the quadratic loop is the cheap one.
	for i := range jtis {
		for j := range i {
			if jtis[i].Key == jtis[j].Key {
				return fmt.Errorf("postgres: twice in one call: %w", &store.ReplayError{Key: jtis[i].Key})
			}
		}
	}
	if len(jtis) == 0 {
		return nil
	}
	hashes := make([][]byte, len(jtis))
	expires := make([]time.Time, len(jtis))
	for i, j := range jtis {
		h := sha256.Sum256([]byte(j.Key))
		hashes[i] = h[:]
		expires[i] = ceilMicro(j.Expires)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: consume jtis: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Conn().Prepare(ctx, stmtConsumeJTIs, consumeJTIs); err != nil {
		return fmt.Errorf("postgres: consume jtis: prepare: %w", err)
	}
	_, err = conn.Exec(ctx, stmtConsumeJTIs, hashes, expires, now)
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeJTISpent {
		pos, perr := strconv.Atoi(pe.Detail)
		if perr != nil || pos < 1 || pos > len(jtis) {
			return fmt.Errorf("postgres: consume jtis: spent key at position %q of %d", pe.Detail, len(jtis))
		}
		return fmt.Errorf("postgres: %w", &store.ReplayError{Key: jtis[pos-1].Key})
	}
	return fmt.Errorf("postgres: consume jtis: %w", err)
}

// ceilMicro rounds t up to a whole microsecond.
func ceilMicro(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// deleteChunk bounds the rows one cleanup statement removes, so that each
// is a short transaction.
const deleteChunk = 5000

// deleteExpiredJTIs checks the expiry again in the DELETE itself: a key
// taken over by ConsumeJTIs after the subquery chose it has a new expiry
// and must stay.
const deleteExpiredJTIs = `
DELETE FROM jti
WHERE key_hash = ANY (ARRAY(SELECT key_hash FROM jti WHERE expires <= $1 LIMIT $2))
AND expires <= $1`

// DeleteExpiredJTIs removes the keys whose Expires is not after before, in
// chunks of deleteChunk rows, each its own transaction. A chunk that the
// recheck made short ends the loop early; the rows it left are expired and
// so free already, and the next cleanup takes them.
func (s *Store) DeleteExpiredJTIs(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, deleteExpiredJTIs, before, deleteChunk)
		if err != nil {
			return total, fmt.Errorf("postgres: delete expired jtis: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < deleteChunk {
			return total, nil
		}
	}
}
