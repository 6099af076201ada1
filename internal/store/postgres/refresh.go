package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tillit-sts/tillit/internal/store"
)

const refreshColumns = "id, family_id, client_id, jkt, grant_doc, issued_at, expires_at, status, used_at"

func scanRefresh(row pgx.Row) (store.RefreshToken, error) {
	var (
		t      store.RefreshToken
		status string
		used   *time.Time
	)
	if err := row.Scan(&t.ID, &t.FamilyID, &t.ClientID, &t.JKT, &t.Grant, &t.IssuedAt, &t.ExpiresAt, &status, &used); err != nil {
		return t, err
	}
	t.IssuedAt, t.ExpiresAt, t.Status = utc(t.IssuedAt), utc(t.ExpiresAt), store.RefreshStatus(status)
	if used != nil {
		t.UsedAt = utc(*used)
	}
	return t, nil
}

// nonNil makes a nil slice an empty bytea rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateRefreshToken stores an active refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if t.ID == "" || t.FamilyID == "" {
		return errors.New("postgres: refresh token without ID or family")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO refresh_token (`+refreshColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', NULL) ON CONFLICT DO NOTHING`,
		t.ID, t.FamilyID, t.ClientID, t.JKT, nonNil(t.Grant), t.IssuedAt, t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: create refresh token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: refresh token: %w", store.ErrAlreadyExists)
	}
	return nil
}

// RefreshToken reads a refresh token by ID.
func (s *Store) RefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	t, err := scanRefresh(s.pool.QueryRow(ctx, "SELECT "+refreshColumns+" FROM refresh_token WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("postgres: read refresh token: %w", err)
	}
	return t, nil
}

// refreshLockClass is the first key of the advisory locks on refresh
// token families ("till" in ASCII); the second is a hash of the family ID.
// Two families whose IDs hash alike share a lock, which only serialises
// them.
const refreshLockClass int32 = 0x74696c6c

// lockFamily is the first statement of every batch that changes a family's
// tokens: rotations and revocations of one family run one after the other,
// on every instance. A row lock on the rotated token would not be enough:
// a revocation that started before a concurrent rotation committed would
// not see the token that rotation created, and would leave it active.
// After the lock, the next statement takes a new snapshot (READ COMMITTED)
// that sees every change the family's previous holders committed.
const lockFamily = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

// lockFamilies takes the locks of several families ($2) in the order of
// their lock keys, so that two transactions that need some of the same
// families (two instances' batches) take them in the same order and
// cannot deadlock on them. The order is the keys', not the names', because
// two names can share a key. PostgreSQL evaluates a volatile output
// expression after the sort (since 9.6), so the locks follow ORDER BY.
const lockFamilies = `SELECT pg_advisory_xact_lock($1, k)
FROM (SELECT DISTINCT hashtext(f) AS k FROM unnest($2::text[]) AS f) AS keys
ORDER BY k`

// retryable selects a row when old (a CTE of the statement, the token
// being rotated, with its successor and retried columns) is a rotated
// token that may be rotated once more (store.RefreshRetryGrace): bound to
// a DPoP key, rotated less than the grace before now ($12), unexpired,
// not retried before, and with a successor of the same key that is still
// active, never used. The caller holds the family lock, so the successor
// cannot change under the statement.
var retryable = retryableAt("$12")

// retryableAt2 is retryable for a statement whose now is $2.
var retryableAt2 = retryableAt("$2")

func retryableAt(now string) string {
	return `SELECT FROM old o JOIN refresh_token s ON s.id = o.successor
	WHERE o.status = 'rotated' AND o.jkt <> '' AND NOT o.retried
		AND o.used_at > ` + now + `::timestamptz - make_interval(secs => ` + strconv.Itoa(int(store.RefreshRetryGrace/time.Second)) + `)
		AND o.expires_at > ` + now + ` AND s.status = 'active' AND s.jkt = o.jkt`
}

// rotateRefresh decides and does a rotation in one statement, under the
// family lock ($3 is the family the caller names for next):
//
//   - old is the token as stored (no row: ErrNotFound).
//   - rotated marks it used when it is active, unexpired at now ($2) and
//     of family $3; created then stores next, only if rotated did.
//   - revoked revokes the whole family when the token was already
//     rotated: reuse.
//
// The caller reads old's row and the two counts to tell which happened.
var rotateRefresh = `
WITH old AS (
	SELECT family_id, status, expires_at, jkt, used_at, successor, retried FROM refresh_token WHERE id = $1
), retry AS (
	SELECT FROM old WHERE family_id = $3 AND EXISTS (` + retryableAt2 + `)
), rotated AS (
	UPDATE refresh_token SET status = 'rotated', used_at = $2, successor = $4
	WHERE id = $1 AND status = 'active' AND expires_at > $2 AND family_id = $3
	RETURNING id
), retried AS (
	UPDATE refresh_token SET successor = $4, retried = true
	WHERE id = $1 AND EXISTS (SELECT FROM retry)
	RETURNING id
), retired AS (
	UPDATE refresh_token SET status = 'rotated', used_at = $2
	WHERE id = (SELECT successor FROM old) AND EXISTS (SELECT FROM retry)
	RETURNING id
), created AS (
	INSERT INTO refresh_token (` + refreshColumns + `)
	SELECT $4, $3, $5, $6, $7, $8, $9, 'active', NULL FROM (SELECT id FROM rotated UNION ALL SELECT id FROM retried) AS r
	RETURNING id
), revoked AS (
	UPDATE refresh_token SET status = 'revoked'
	WHERE family_id = $3 AND EXISTS (SELECT FROM old WHERE status = 'rotated' AND family_id = $3)
		AND NOT EXISTS (SELECT FROM retry)
	RETURNING id
)
SELECT family_id, status, expires_at, (SELECT count(*) FROM created), (SELECT count(*) FROM revoked) FROM old`

// RotateRefreshToken spends oldID and creates next; see store.Store. The
// family lock and the rotation are sent together as one pipelined batch,
// which PostgreSQL runs as one transaction: one round trip. A reuse
// revokes the family and commits that before it reports
// store.ErrRefreshReused.
func (s *Store) RotateRefreshToken(ctx context.Context, now time.Time, oldID string, next store.RefreshToken) error {
	if next.ID == "" || next.FamilyID == "" {
		return errors.New("postgres: rotate refresh token: next token without ID or family")
	}
	b := &pgx.Batch{}
	b.Queue(lockFamily, refreshLockClass, next.FamilyID)
	b.Queue(rotateRefresh, oldID, now, next.FamilyID,
		next.ID, next.ClientID, next.JKT, nonNil(next.Grant), next.IssuedAt, next.ExpiresAt)
	var (
		family, status  string
		expires         time.Time
		created, revoke int64
	)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&family, &status, &expires, &created, &revoke)
	}
	// Close ends the batch's implicit transaction: only a nil error from
	// it means the rotation or the revocation is committed.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	case sqlState(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: rotate refresh token: next token: %w", store.ErrAlreadyExists)
	case err != nil:
		return fmt.Errorf("postgres: rotate refresh token: %w", err)
	case family != next.FamilyID:
		return fmt.Errorf("postgres: rotate refresh token: next token is of family %q, not %q", next.FamilyID, family)
	case created == 1:
		// The database decided the token was active and unexpired.
		return nil
	case store.RefreshStatus(status) == store.RefreshRotated:
		return fmt.Errorf("postgres: %w", store.ErrRefreshReused)
	case store.RefreshStatus(status) == store.RefreshRevoked, !expires.After(now):
		return fmt.Errorf("postgres: refresh token: %w", store.ErrRevoked)
	}
	return fmt.Errorf("postgres: rotate refresh token: the next token was not stored (status %q)", status)
}

// RevokeRefreshFamily revokes every token of a family, under the family
// lock, in one round trip.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(lockFamily, refreshLockClass, familyID)
	b.Queue("UPDATE refresh_token SET status = 'revoked' WHERE family_id = $1 AND status <> 'revoked'", familyID)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var n int64
	if err == nil {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		n = tag.RowsAffected()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke refresh family: %w", err)
	}
	return n, nil
}

// DeleteExpiredRefreshTokens removes tokens whose ExpiresAt is not after
// before.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM refresh_token WHERE expires_at <= $1", before)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired refresh tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}
