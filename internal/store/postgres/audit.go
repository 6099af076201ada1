package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// ErrNoAuditKey is returned by CommitDecision on a Store opened without
// Options.AuditKey.
var ErrNoAuditKey = errors.New("postgres: no audit key: open the store with Options.AuditKey to write audit records")

// SQLSTATEs raised by tillit_refuse (migration 0002); TL001 is
// codeJTISpent.
const (
	codeHeadMoved      = "TL002"
	codeRefreshChanged = "TL003"
)

// commitDecision decides and writes one decision in one statement, and so
// in one round trip and one transaction. The record ($16 on) was sealed by
// the caller on the chain head ($14 - 1, $15) it believes is current:
//
//   - verdict is the refresh token's fate when $1 (a rotation): unknown,
//     of another family, reused (already rotated), revoked (or expired at
//     $12), or ok. Without a rotation it is ok. The caller has taken the
//     family's advisory lock in the same transaction, so the snapshot this
//     statement reads holds every change to the family committed before.
//     A rotated token may instead be retried: rotated once more, within
//     store.RefreshRetryGrace (retryable); retired then marks its first
//     successor rotated, and retried records the second rotation.
//   - revoked revokes the family on reuse; nothing else is written then,
//     and the statement commits that alone.
//   - input, recorded: the jtis as ConsumeJTIs spends them (hash order,
//     expired keys taken over), only when the verdict is ok.
//   - rotated, created: the rotation, as RotateRefreshToken does it.
//   - family_revoked: the revocation of family $31 (when not empty), as
//     RevokeRefreshFamily does it, under the same family lock.
//   - moved (or started, for a chain's first record) moves the head, and
//     only if it is still the one the record was sealed on. The UPDATE
//     locks the head row: another transaction appending to the same chain
//     waits for this one, then finds the head moved.
//   - appended stores the record only if the head moved.
//
// The final SELECT returns the verdict and the old token's family, or
// aborts with tillit_refuse, rolling everything back, when a jti was spent
// (TL001, the first spent key's position in the caller's order), the
// rotation did not happen after all (TL003), or the head had moved (TL002).
var commitDecision = `
WITH old AS (
	SELECT family_id, status, expires_at, jkt, used_at, successor, retried FROM refresh_token WHERE $1 AND id = $2
), verdict AS (
	SELECT CASE
		WHEN NOT $1 THEN 'ok'
		WHEN NOT EXISTS (SELECT FROM old) THEN 'unknown'
		WHEN (SELECT family_id FROM old) <> $3 THEN 'family'
		WHEN EXISTS (` + retryable + `) THEN 'retry'
		WHEN (SELECT status FROM old) = 'rotated' THEN 'reused'
		WHEN (SELECT status FROM old) = 'revoked' OR (SELECT expires_at FROM old) <= $12 THEN 'revoked'
		ELSE 'ok'
	END AS v
), revoked AS (
	UPDATE refresh_token SET status = 'revoked'
	WHERE family_id = $3 AND (SELECT v FROM verdict) = 'reused'
	RETURNING id
), input AS (
	SELECT key_hash, expires, pos
	FROM unnest($10::bytea[], $11::timestamptz[]) WITH ORDINALITY AS t(key_hash, expires, pos)
	WHERE (SELECT v FROM verdict) IN ('ok', 'retry')
), recorded AS (
	INSERT INTO jti AS j (key_hash, expires)
	SELECT key_hash, expires FROM input ORDER BY key_hash
	ON CONFLICT (key_hash) DO UPDATE SET expires = excluded.expires
	WHERE j.expires <= $12
	RETURNING j.key_hash
), rotated AS (
	UPDATE refresh_token SET status = 'rotated', used_at = $12, successor = $4
	WHERE $1 AND id = $2 AND status = 'active' AND expires_at > $12 AND (SELECT v FROM verdict) = 'ok'
	RETURNING id
), retried AS (
	UPDATE refresh_token SET successor = $4, retried = true
	WHERE $1 AND id = $2 AND (SELECT v FROM verdict) = 'retry'
	RETURNING id
), retired AS (
	UPDATE refresh_token SET status = 'rotated', used_at = $12
	WHERE id = (SELECT successor FROM old) AND (SELECT v FROM verdict) = 'retry'
	RETURNING id
), created AS (
	INSERT INTO refresh_token (` + refreshColumns + `)
	SELECT $4, $3, $5, $6, $7, $8, $9, 'active', NULL FROM (SELECT id FROM rotated UNION ALL SELECT id FROM retried) AS r
	RETURNING id
), family_revoked AS (
	UPDATE refresh_token SET status = 'revoked'
	WHERE $31 <> '' AND family_id = $31 AND status <> 'revoked' AND (SELECT v FROM verdict) = 'ok'
	RETURNING id
), moved AS (
	UPDATE audit_head SET seq = $14, mac = $16
	WHERE instance = $13 AND seq = $14 - 1 AND mac = $15 AND (SELECT v FROM verdict) IN ('ok', 'retry')
	RETURNING instance
), started AS (
	INSERT INTO audit_head (instance, seq, mac)
	SELECT $13, $14, $16 WHERE $14 = 1 AND (SELECT v FROM verdict) IN ('ok', 'retry')
	ON CONFLICT (instance) DO NOTHING
	RETURNING instance
), appended AS (
	INSERT INTO audit_log (` + auditColumns + `)
	SELECT $13, $14, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $15, $16, $32, $33
	FROM (SELECT instance FROM moved UNION ALL SELECT instance FROM started) AS h
	RETURNING seq
)
SELECT v, (SELECT family_id FROM old), CASE
	WHEN v NOT IN ('ok', 'retry') THEN NULL
	WHEN EXISTS (SELECT FROM input WHERE key_hash NOT IN (SELECT key_hash FROM recorded)) THEN
		tillit_refuse('` + codeJTISpent + `', (SELECT min(pos) FROM input WHERE key_hash NOT IN (SELECT key_hash FROM recorded))::text)
	WHEN $1 AND NOT EXISTS (SELECT FROM created) THEN tillit_refuse('` + codeRefreshChanged + `', '')
	WHEN NOT EXISTS (SELECT FROM appended) THEN tillit_refuse('` + codeHeadMoved + `', '')
END
FROM verdict`

// commitPlain is commitDecision for a decision that neither rotates a
// refresh token nor revokes a family, which is every client_credentials
// token and every refusal: the same jtis, head and record, without the
// refresh-token parts. The writer's database backend is what bounds a
// chain's rate, and most of its time per decision went to starting the
// executor for those parts (six more sub-statements, their tables and
// indexes), which such a decision does not use.
//
// $1, $2: the jtis' hashes and expiries; $3: now; $4–$7: instance, seq,
// prev and MAC of the sealed record; $8–$23: the record's other fields.
const commitPlain = `
WITH ` + spendJTIs + `, moved AS (
	UPDATE audit_head SET seq = $5, mac = $7
	WHERE instance = $4 AND seq = $5 - 1 AND mac = $6
	RETURNING instance
), started AS (
	INSERT INTO audit_head (instance, seq, mac)
	SELECT $4, $5, $7 WHERE $5 = 1
	ON CONFLICT (instance) DO NOTHING
	RETURNING instance
), appended AS (
	INSERT INTO audit_log (` + auditColumns + `)
	SELECT $4, $5, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $6, $7, $22, $23
	FROM (SELECT instance FROM moved UNION ALL SELECT instance FROM started) AS h
	RETURNING seq
)
SELECT 'ok', NULL::text, CASE
	WHEN EXISTS (SELECT FROM input WHERE key_hash NOT IN (SELECT key_hash FROM recorded)) THEN
		tillit_refuse('` + codeJTISpent + `', (SELECT min(pos) FROM input WHERE key_hash NOT IN (SELECT key_hash FROM recorded))::text)
	WHEN NOT EXISTS (SELECT FROM appended) THEN tillit_refuse('` + codeHeadMoved + `', '')
END`

// stmtCommitPlain is the name commitPlain is prepared under.
const stmtCommitPlain = "tillit_commit_plain"

// stmtCommitDecision is the name commitDecision is prepared under on each
// connection, for the reason given at stmtConsumeJTIs: a refused decision
// fails by design and must not cost the next one a new prepare.
const stmtCommitDecision = "tillit_commit_decision"

const auditColumns = `instance, seq, time, request_id, endpoint, grant_type, client_id, orgnr_parent, orgnr_child,
	orgnr_supplier, subject, audience, scopes, token_id, outcome, error, prev, mac, client_request_id, details`

// CommitDecision commits one decision of the token endpoint in one
// transaction, with the semantics of the SQLite backend's: it spends
// d.JTIs (as ConsumeJTIs), rotates d.Rotate (as RotateRefreshToken) and
// appends d.Audit to its instance's chain, sealed with the audit key, and
// moves the chain's head. Either all of it is written or none: a spent jti
// gives a *store.ReplayError naming the first spent key, a revoked or
// expired refresh token store.ErrRevoked, an unknown one store.ErrNotFound.
// The one exception is a refresh token that was already rotated: that
// revokes its family (committed) and nothing else is written; the error is
// store.ErrRefreshReused. It returns once the commit is durable, with the
// record as stored: its place in the chain filled in.
//
// The decisions of one instance are committed by that chain's writer
// (writer.go): those that arrive while a commit is under way share the
// next transaction and its WAL flush, in one round trip. A caller whose
// ctx ends before the writer has sent its decision gets ctx.Err() and
// nothing is written; once sent, the decision is written whole or not at
// all, and a caller whose ctx ends before the answer came gets
// store.ErrOutcomeUnknown.
//
// PostgreSQL's text holds neither NUL nor invalid UTF-8, which a client
// can put in the grant_type a refusal records: such bytes in the record's
// strings are replaced by U+FFFD before it is sealed, and the returned
// record says so.
func (s *Store) CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	o, err := s.newDecision(ctx, now, d)
	if err != nil {
		return o.rec, err
	}
	rec := o.rec
	ch, err := s.chains.get(s, rec.Instance)
	if err != nil {
		return rec, err
	}
	if !ch.enqueue(o) {
		return rec, ErrClosed
	}
	select {
	case r := <-o.done:
		return r.rec, r.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) || o.state.CompareAndSwap(opTaken, opAbandoned) {
			return rec, fmt.Errorf("postgres: commit decision: %w", ctx.Err())
		}
		// The statement was sent: the writer will learn whether it
		// committed, and nobody will be told. The caller does not wait
		// beyond its deadline for a database that may not answer for
		// long.
		select {
		case r := <-o.done:
			return r.rec, r.err
		default:
			return rec, fmt.Errorf("postgres: commit decision: %w: %w", store.ErrOutcomeUnknown, ctx.Err())
		}
	}
}

// ExpectDecision returns a Pending that commits as CommitDecision does and
// announces nothing: a chain's writer shares a transaction among the
// decisions that arrive while one is under way, and holds none open for
// decisions on their way (bound by the database's CPU per decision, it
// gained nothing from holding).
func (s *Store) ExpectDecision() store.Pending { return unannounced{s} }

// unannounced is the Pending of ExpectDecision.
type unannounced struct{ s *Store }

func (u unannounced) Commit(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	return u.s.CommitDecision(ctx, now, d)
}

func (unannounced) Close() {}

// newDecision checks d and prepares it for its chain's writer. On error,
// the op holds the record as it would have been stored.
func (s *Store) newDecision(ctx context.Context, now time.Time, d store.Decision) (*decisionOp, error) {
	rec := textRecord(d.Audit)
	refused := &decisionOp{rec: rec}
	if s.auditKey == nil {
		return refused, ErrNoAuditKey
	}
	if rec.Instance == "" {
		return refused, errors.New("postgres: audit record without an instance")
	}
	jtis := d.JTIs
	for i := range jtis {
		for j := range i {
			if jtis[i].Key == jtis[j].Key {
				return refused, fmt.Errorf("postgres: twice in one call: %w", &store.ReplayError{Key: jtis[i].Key})
			}
		}
	}
	if r := d.Rotate; r != nil && (r.Next.ID == "" || r.Next.FamilyID == "") {
		return refused, errors.New("postgres: rotate refresh token: next token without ID or family")
	}
	if d.Rotate != nil && d.RevokeFamily != "" {
		return refused, errors.New("postgres: a decision rotates a refresh token or revokes a family, not both")
	}
	if err := ctx.Err(); err != nil {
		return refused, fmt.Errorf("postgres: commit decision: %w", err)
	}
	o := &decisionOp{ctx: ctx, now: now, jtis: jtis, rot: d.Rotate, revoke: d.RevokeFamily, rec: rec,
		hashes: make([][]byte, len(jtis)), expires: make([]time.Time, len(jtis)),
		done: make(chan decisionResult, 1)}
	for i, j := range jtis {
		h := sha256.Sum256([]byte(j.Key))
		o.hashes[i] = h[:]
		o.expires[i] = ceilMicro(j.Expires)
	}
	return o, nil
}

// refusal is the error of a decision the statement refused without
// raising (verdict is not "ok"), as RotateRefreshToken gives it.
func (o *decisionOp) refusal(verdict, family string) error {
	switch verdict {
	case "reused":
		return fmt.Errorf("postgres: %w", store.ErrRefreshReused)
	case "unknown":
		return fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	case "revoked":
		return fmt.Errorf("postgres: refresh token: %w", store.ErrRevoked)
	case "family":
		return fmt.Errorf("postgres: rotate refresh token: next token is of family %q, not %q", o.rot.Next.FamilyID, family)
	}
	return fmt.Errorf("postgres: commit decision: verdict %q", verdict)
}

// failure is the error of a decision whose statement the server aborted
// with err, when that is the decision's own answer (see settle): a spent
// jti, a refresh token changed under the rotation, a next token that
// exists, or a statement the server refused.
func (o *decisionOp) failure(err error) error {
	var pe *pgconn.PgError
	errors.As(err, &pe)
	switch {
	case pe == nil:
	case pe.Code == codeJTISpent:
		pos, perr := strconv.Atoi(pe.Detail)
		if perr != nil || pos < 1 || pos > len(o.jtis) {
			return fmt.Errorf("postgres: commit decision: spent key at position %q of %d", pe.Detail, len(o.jtis))
		}
		return fmt.Errorf("postgres: %w", &store.ReplayError{Key: o.jtis[pos-1].Key})
	case pe.Code == codeRefreshChanged:
		return fmt.Errorf("postgres: refresh token changed while it was rotated: %w", store.ErrRevoked)
	case pe.Code == codeUniqueViolation && pe.ConstraintName == "refresh_token_pkey":
		return fmt.Errorf("postgres: rotate refresh token: next token: %w", store.ErrAlreadyExists)
	case pe.Code == codeUniqueViolation && pe.ConstraintName == "audit_log_pkey":
		// The head moved as sealed, but a record with the next number
		// is there: it was added outside the store.
		return fmt.Errorf("postgres: instance %q: record #%d exists past the head: %w", o.sealed.Instance, o.sealed.Seq, store.ErrAuditChainBroken)
	}
	return fmt.Errorf("postgres: commit decision: %w", err)
}

// args are commitDecision's arguments for o, sealed as o.sealed.
// family is the refresh token family the decision changes, whose lock it
// takes first; empty when it changes none.
func (o *decisionOp) family() string {
	if o.rot != nil {
		return o.rot.Next.FamilyID
	}
	return o.revoke
}

// statement is the prepared statement that commits o, and its arguments.
func (o *decisionOp) statement() (string, []any) {
	if o.rot != nil || o.revoke != "" {
		return stmtCommitDecision, o.args()
	}
	r := &o.sealed
	return stmtCommitPlain, []any{o.hashes, o.expires, o.now,
		r.Instance, r.Seq, r.Prev, r.MAC,
		r.Time, r.RequestID, r.Endpoint, r.GrantType, r.ClientID, r.OrgParent, r.OrgChild, r.OrgSupplier,
		r.Subject, r.Audience, nonNilStrings(r.Scopes), r.TokenID, r.Outcome, r.Error, r.ClientRequestID, r.Details}
}

func (o *decisionOp) args() []any {
	r := &o.sealed
	args := []any{o.rot != nil, nil, nil, nil, nil, nil, nil, nil, nil,
		o.hashes, o.expires, o.now,
		r.Instance, r.Seq, r.Prev, r.MAC,
		r.Time, r.RequestID, r.Endpoint, r.GrantType, r.ClientID, r.OrgParent, r.OrgChild, r.OrgSupplier,
		r.Subject, r.Audience, nonNilStrings(r.Scopes), r.TokenID, r.Outcome, r.Error, o.revoke, r.ClientRequestID, r.Details}
	if rot := o.rot; rot != nil {
		n := rot.Next
		copy(args[1:9], []any{rot.OldID, n.FamilyID, n.ID, n.ClientID, n.JKT, nonNil(n.Grant), n.IssuedAt, n.ExpiresAt})
	}
	return args
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// text makes s storable in a text column: NUL and invalid UTF-8 become
// U+FFFD. audit.Key.Seal replaces invalid UTF-8 the same way, in every
// backend; NUL is this backend's own.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// textRecord is r with every string storable.
func textRecord(r store.AuditRecord) store.AuditRecord {
	for _, f := range []*string{&r.Instance, &r.RequestID, &r.ClientRequestID, &r.Endpoint, &r.GrantType, &r.ClientID,
		&r.OrgParent, &r.OrgChild, &r.OrgSupplier, &r.Subject, &r.Audience, &r.TokenID, &r.Outcome, &r.Error, &r.Details} {
		*f = text(*f)
	}
	if r.Scopes != nil {
		scopes := make([]string, len(r.Scopes))
		for i, sc := range r.Scopes {
			scopes[i] = text(sc)
		}
		r.Scopes = scopes
	}
	return r
}

func scanAudit(row pgx.Row) (store.AuditRecord, error) {
	var r store.AuditRecord
	err := row.Scan(&r.Instance, &r.Seq, &r.Time, &r.RequestID, &r.Endpoint, &r.GrantType, &r.ClientID,
		&r.OrgParent, &r.OrgChild, &r.OrgSupplier, &r.Subject, &r.Audience, &r.Scopes, &r.TokenID,
		&r.Outcome, &r.Error, &r.Prev, &r.MAC, &r.ClientRequestID, &r.Details)
	r.Time = utc(r.Time)
	return r, err
}

// AuditRecords returns the records f selects, by instance and sequence.
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Instance != "" {
		add("instance = $%d", text(f.Instance))
	}
	if f.AfterSeq > 0 {
		add("seq > $%d", f.AfterSeq)
	}
	if !f.Since.IsZero() {
		add("time >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("time < $%d", f.Until)
	}
	if f.ClientID != "" {
		add("client_id = $%d", text(f.ClientID))
	}
	if f.Outcome != "" {
		add("outcome = $%d", text(f.Outcome))
	}
	q := "SELECT " + auditColumns + " FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Newest {
		q += " ORDER BY time DESC, instance DESC, seq DESC"
	} else {
		q += " ORDER BY instance, seq"
	}
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AuditRecord, error) { return scanAudit(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit log: %w", err)
	}
	if f.Newest {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

// AuditChain yields one instance's records in sequence order, a page at a
// time.
func (s *Store) AuditChain(ctx context.Context, instance string) iter.Seq2[store.AuditRecord, error] {
	return store.ChainPages(ctx, instance, s.AuditRecords)
}

// AuditHeads returns the head of every chain, by instance.
func (s *Store) AuditHeads(ctx context.Context) ([]store.AuditHead, error) {
	rows, err := s.pool.Query(ctx, "SELECT instance, seq, mac FROM audit_head ORDER BY instance")
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit heads: %w", err)
	}
	heads, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AuditHead, error) {
		var h store.AuditHead
		err := row.Scan(&h.Instance, &h.Seq, &h.MAC)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit heads: %w", err)
	}
	return heads, nil
}

// AuditInstances lists every instance that has records, in byte order
// (the column is COLLATE "C").
func (s *Store) AuditInstances(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, store.AuditInstancesQuery)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit instances: %w", err)
	}
	return out, nil
}

// tipQuery reads an instance's head and the Seq and MAC of its newest
// record in one statement, and so one snapshot; NULLs where there is none.
const tipQuery = `SELECT h.seq, h.mac, l.seq, l.mac FROM (SELECT) AS one
	LEFT JOIN audit_head h ON h.instance = $1
	LEFT JOIN LATERAL (SELECT seq, mac FROM audit_log WHERE instance = $1 ORDER BY seq DESC LIMIT 1) l ON true`

// scanTip reads what tipQuery returns.
func scanTip(row pgx.Row, instance string) (head, last *store.AuditHead, err error) {
	var hs, ls *int64
	var hm, lm []byte
	if err := row.Scan(&hs, &hm, &ls, &lm); err != nil {
		return nil, nil, fmt.Errorf("postgres: read audit tip: %w", err)
	}
	if hs != nil {
		head = &store.AuditHead{Instance: instance, Seq: *hs, MAC: hm}
	}
	if ls != nil {
		last = &store.AuditHead{Instance: instance, Seq: *ls, MAC: lm}
	}
	return head, last, nil
}

// AuditTip returns instance's head and newest record, read in one
// snapshot.
func (s *Store) AuditTip(ctx context.Context, instance string) (store.AuditTip, error) {
	instance = text(instance)
	tip := store.AuditTip{Instance: instance}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return tip, fmt.Errorf("postgres: read audit tip: %w", err)
	}
	defer tx.Rollback(ctx)
	head, last, err := scanTip(tx.QueryRow(ctx, tipQuery, instance), instance)
	if err != nil {
		return tip, err
	}
	tip.Head = head
	if last != nil {
		r, err := scanAudit(tx.QueryRow(ctx, "SELECT "+auditColumns+" FROM audit_log WHERE instance = $1 AND seq = $2", instance, last.Seq))
		if err != nil {
			return tip, fmt.Errorf("postgres: read audit tip: %w", err)
		}
		tip.Last = &r
	}
	return tip, nil
}

// ResealAuditChain appends rec after a break, as the first record of a new
// segment that follows the intact record after; see store.Store. It locks
// the chain's head row, or takes the chain's place for one, so that no
// writer appends meanwhile; a writer whose copy of the head is then stale
// finds it moved and reads it again.
func (s *Store) ResealAuditChain(ctx context.Context, after store.AuditHead, rec store.AuditRecord) (store.AuditRecord, error) {
	rec = textRecord(rec)
	if s.auditKey == nil {
		return rec, ErrNoAuditKey
	}
	if rec.Instance == "" {
		return rec, errors.New("postgres: audit record without an instance")
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", auditLockClass, rec.Instance); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT FROM audit_head WHERE instance = $1 FOR UPDATE", rec.Instance); err != nil {
			return err
		}
		head, last, err := scanTip(tx.QueryRow(ctx, tipQuery, rec.Instance), rec.Instance)
		if err != nil {
			return err
		}
		next := int64(1)
		if head != nil {
			next = head.Seq + 1
		}
		if last != nil && last.Seq >= next {
			next = last.Seq + 1
		}
		if after.Seq > 0 {
			var mac []byte
			err := tx.QueryRow(ctx, "SELECT mac FROM audit_log WHERE instance = $1 AND seq = $2", rec.Instance, after.Seq).Scan(&mac)
			if errors.Is(err, pgx.ErrNoRows) || err == nil && !bytes.Equal(mac, after.MAC) {
				return fmt.Errorf("reseal %s after #%d: that record is not there as given: %w", rec.Instance, after.Seq, store.ErrConflict)
			}
			if err != nil {
				return err
			}
		}
		s.auditKey.SealAfter(&rec, next, after)
		if err := insertAudit(ctx, tx, &rec); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_head (instance, seq, mac) VALUES ($1, $2, $3)
			ON CONFLICT (instance) DO UPDATE SET seq = excluded.seq, mac = excluded.mac`, rec.Instance, rec.Seq, rec.MAC)
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("postgres: reseal audit chain: %w", err)
	}
	return rec, nil
}

// PruneAuditChain removes the oldest records of instance's chain and seals
// a checkpoint for them; see store.Store. Like ResealAuditChain it locks
// the chain's head, and a writer whose copy of the head is then stale
// reads it again.
func (s *Store) PruneAuditChain(ctx context.Context, instance string, before, now time.Time) (int64, error) {
	if s.auditKey == nil {
		return 0, ErrNoAuditKey
	}
	instance = text(instance)
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", auditLockClass, instance); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT FROM audit_head WHERE instance = $1 FOR UPDATE", instance); err != nil {
			return err
		}
		head, last, err := scanTip(tx.QueryRow(ctx, tipQuery, instance), instance)
		if err != nil {
			return err
		}
		if err := store.CheckAuditTip(instance, head, last); err != nil || head == nil {
			return err
		}
		var first, keep *int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT min(seq) FROM audit_log WHERE instance = $1),
			(SELECT min(seq) FROM audit_log WHERE instance = $1 AND time >= $2)`, instance, before).Scan(&first, &keep); err != nil {
			return err
		}
		through := head.Seq - 1 // never the newest
		if keep != nil && *keep-1 < through {
			through = *keep - 1
		}
		if first == nil || through < *first {
			return nil
		}
		removed := store.AuditHead{Instance: instance, Seq: through}
		if err := tx.QueryRow(ctx, "SELECT mac FROM audit_log WHERE instance = $1 AND seq = $2", instance, through).Scan(&removed.MAC); err != nil {
			return fmt.Errorf("record #%d: %w", through, err)
		}
		tag, err := tx.Exec(ctx, "DELETE FROM audit_log WHERE instance = $1 AND seq <= $2", instance, through)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		rec := audit.PruneRecord(instance, now, removed, before)
		s.auditKey.Seal(&rec, head.Seq, head.MAC)
		if err := insertAudit(ctx, tx, &rec); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE audit_head SET seq = $2, mac = $3 WHERE instance = $1", instance, rec.Seq, rec.MAC)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: prune audit chain: %w", err)
	}
	return n, nil
}

// auditLockClass is the first key of the transaction-scoped advisory
// locks the log's own writes (reseal, retention) take per chain, so that
// two of them never interleave on one chain.
const auditLockClass int32 = 0x6175 // "au"

// insertAudit appends the sealed record rec outside the chain writer.
func insertAudit(ctx context.Context, tx pgx.Tx, rec *store.AuditRecord) error {
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (`+auditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		rec.Instance, rec.Seq, rec.Time, rec.RequestID, rec.Endpoint, rec.GrantType, rec.ClientID,
		rec.OrgParent, rec.OrgChild, rec.OrgSupplier, rec.Subject, rec.Audience, nonNilStrings(rec.Scopes),
		rec.TokenID, rec.Outcome, rec.Error, rec.Prev, rec.MAC, rec.ClientRequestID, rec.Details)
	return err
}
