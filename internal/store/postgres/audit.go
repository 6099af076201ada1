package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
//   - revoked revokes the family on reuse; nothing else is written then,
//     and the statement commits that alone.
//   - input, recorded: the jtis as ConsumeJTIs spends them (hash order,
//     expired keys taken over), only when the verdict is ok.
//   - rotated, created: the rotation, as RotateRefreshToken does it.
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
const commitDecision = `
WITH old AS (
	SELECT family_id, status, expires_at FROM refresh_token WHERE $1 AND id = $2
), verdict AS (
	SELECT CASE
		WHEN NOT $1 THEN 'ok'
		WHEN NOT EXISTS (SELECT FROM old) THEN 'unknown'
		WHEN (SELECT family_id FROM old) <> $3 THEN 'family'
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
	WHERE (SELECT v FROM verdict) = 'ok'
), recorded AS (
	INSERT INTO jti AS j (key_hash, expires)
	SELECT key_hash, expires FROM input ORDER BY key_hash
	ON CONFLICT (key_hash) DO UPDATE SET expires = excluded.expires
	WHERE j.expires <= $12
	RETURNING j.key_hash
), rotated AS (
	UPDATE refresh_token SET status = 'rotated', used_at = $12
	WHERE $1 AND id = $2 AND status = 'active' AND expires_at > $12 AND (SELECT v FROM verdict) = 'ok'
	RETURNING id
), created AS (
	INSERT INTO refresh_token (` + refreshColumns + `)
	SELECT $4, $3, $5, $6, $7, $8, $9, 'active', NULL FROM rotated
	RETURNING id
), moved AS (
	UPDATE audit_head SET seq = $14, mac = $16
	WHERE instance = $13 AND seq = $14 - 1 AND mac = $15 AND (SELECT v FROM verdict) = 'ok'
	RETURNING instance
), started AS (
	INSERT INTO audit_head (instance, seq, mac)
	SELECT $13, $14, $16 WHERE $14 = 1 AND (SELECT v FROM verdict) = 'ok'
	ON CONFLICT (instance) DO NOTHING
	RETURNING instance
), appended AS (
	INSERT INTO audit_log (` + auditColumns + `)
	SELECT $13, $14, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $15, $16
	FROM (SELECT instance FROM moved UNION ALL SELECT instance FROM started) AS h
	RETURNING seq
)
SELECT v, (SELECT family_id FROM old), CASE
	WHEN v <> 'ok' THEN NULL
	WHEN EXISTS (SELECT FROM input WHERE key_hash NOT IN (SELECT key_hash FROM recorded)) THEN
		tillit_refuse('` + codeJTISpent + `', (SELECT min(pos) FROM input WHERE key_hash NOT IN (SELECT key_hash FROM recorded))::text)
	WHEN $1 AND NOT EXISTS (SELECT FROM created) THEN tillit_refuse('` + codeRefreshChanged + `', '')
	WHEN NOT EXISTS (SELECT FROM appended) THEN tillit_refuse('` + codeHeadMoved + `', '')
END
FROM verdict`

// stmtCommitDecision is the name commitDecision is prepared under on each
// connection, for the reason given at stmtConsumeJTIs: a refused decision
// fails by design and must not cost the next one a new prepare.
const stmtCommitDecision = "tillit_commit_decision"

const auditColumns = `instance, seq, time, request_id, endpoint, grant_type, client_id, orgnr_parent, orgnr_child,
	orgnr_supplier, subject, audience, scopes, token_id, outcome, error, prev, mac`

// chain is what this Store knows of one instance's audit chain. Decisions
// of one instance are committed one at a time (lock), because each
// record's MAC covers the one before it: the next record can be sealed
// only once the previous commit's outcome is known. The head is kept here
// so that a decision needs no read before its write; the statement checks
// it against the database, so a stale head (another process appended under
// the same instance name, or a commit's outcome was lost with its
// connection) costs one read and a retry, never a broken chain.
type chain struct {
	lock  chan struct{} // one slot: held while a decision is in flight
	head  store.AuditHead
	known bool // head is the database's, as far as this Store knows
}

type chains struct {
	mu sync.Mutex
	m  map[string]*chain
}

func (c *chains) get(instance string) *chain {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*chain{}
	}
	ch := c.m[instance]
	if ch == nil {
		ch = &chain{lock: make(chan struct{}, 1)}
		c.m[instance] = ch
	}
	return ch
}

// maxHeadRetries bounds the attempts of one decision whose chain head
// keeps moving: that only happens when two running processes share an
// instance name, which the configuration forbids.
const maxHeadRetries = 3

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
// A decision is one round trip: one statement, or, with a rotation, the
// family's advisory lock and the statement sent as one pipelined batch.
// Decisions of one instance are committed one after the other (see chain);
// a Store's first decision for an instance reads the chain head first.
//
// PostgreSQL's text holds neither NUL nor invalid UTF-8, which a client
// can put in the grant_type a refusal records: such bytes in the record's
// strings are replaced by U+FFFD before it is sealed, and the returned
// record says so.
func (s *Store) CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	rec := textRecord(d.Audit)
	if s.auditKey == nil {
		return rec, ErrNoAuditKey
	}
	if rec.Instance == "" {
		return rec, errors.New("postgres: audit record without an instance")
	}
	jtis := d.JTIs
	for i := range jtis {
		for j := range i {
			if jtis[i].Key == jtis[j].Key {
				return rec, fmt.Errorf("postgres: twice in one call: %w", &store.ReplayError{Key: jtis[i].Key})
			}
		}
	}
	if r := d.Rotate; r != nil && (r.Next.ID == "" || r.Next.FamilyID == "") {
		return rec, errors.New("postgres: rotate refresh token: next token without ID or family")
	}
	hashes := make([][]byte, len(jtis))
	expires := make([]time.Time, len(jtis))
	for i, j := range jtis {
		h := sha256.Sum256([]byte(j.Key))
		hashes[i] = h[:]
		expires[i] = ceilMicro(j.Expires)
	}

	ch := s.chains.get(rec.Instance)
	select {
	case ch.lock <- struct{}{}:
	case <-ctx.Done():
		return rec, fmt.Errorf("postgres: commit decision: %w", ctx.Err())
	}
	defer func() { <-ch.lock }()

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return rec, fmt.Errorf("postgres: commit decision: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Conn().Prepare(ctx, stmtCommitDecision, commitDecision); err != nil {
		return rec, fmt.Errorf("postgres: commit decision: prepare: %w", err)
	}
	for attempt := 1; ; attempt++ {
		if !ch.known {
			if ch.head, err = readHead(ctx, conn.Conn(), rec.Instance); err != nil {
				return rec, err
			}
			ch.known = true
		}
		sealed := rec
		s.auditKey.Seal(&sealed, ch.head.Seq, ch.head.MAC)
		if sealed.Prev == nil {
			sealed.Prev = []byte{}
		}
		verdict, family, err := s.commit(ctx, conn.Conn(), now, d.Rotate, hashes, expires, &sealed)
		switch code := sqlState(err); {
		case err == nil:
		case code == codeHeadMoved && attempt < maxHeadRetries:
			ch.known = false
			continue
		case code == codeHeadMoved:
			ch.known = false
			return sealed, fmt.Errorf("postgres: the audit chain of instance %q moved under every attempt to append: is another running server using the same instance name?", rec.Instance)
		case code == codeJTISpent:
			// Rolled back: the head is as it was.
			var pe *pgconn.PgError
			errors.As(err, &pe)
			pos, perr := strconv.Atoi(pe.Detail)
			if perr != nil || pos < 1 || pos > len(jtis) {
				return sealed, fmt.Errorf("postgres: commit decision: spent key at position %q of %d", pe.Detail, len(jtis))
			}
			return sealed, fmt.Errorf("postgres: %w", &store.ReplayError{Key: jtis[pos-1].Key})
		case code == codeRefreshChanged:
			return sealed, fmt.Errorf("postgres: refresh token changed while it was rotated: %w", store.ErrRevoked)
		case code == codeUniqueViolation:
			return sealed, fmt.Errorf("postgres: rotate refresh token: next token: %w", store.ErrAlreadyExists)
		case code != "":
			// The server refused the statement: it was rolled back.
			return sealed, fmt.Errorf("postgres: commit decision: %w", err)
		default:
			// The outcome is unknown (the connection failed, the
			// context ended): the head must be read again.
			ch.known = false
			return sealed, fmt.Errorf("postgres: commit decision: %w", err)
		}
		switch verdict {
		case "ok":
			ch.head = store.AuditHead{Instance: sealed.Instance, Seq: sealed.Seq, MAC: sealed.MAC}
			return sealed, nil
		case "reused":
			return rec, fmt.Errorf("postgres: %w", store.ErrRefreshReused)
		case "unknown":
			return rec, fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
		case "revoked":
			return rec, fmt.Errorf("postgres: refresh token: %w", store.ErrRevoked)
		case "family":
			return rec, fmt.Errorf("postgres: rotate refresh token: next token is of family %q, not %q", d.Rotate.Next.FamilyID, family)
		}
		return rec, fmt.Errorf("postgres: commit decision: verdict %q", verdict)
	}
}

// commit runs commitDecision once: alone, or after the family lock in one
// pipelined batch (one implicit transaction) when it rotates.
func (s *Store) commit(ctx context.Context, conn *pgx.Conn, now time.Time, rot *store.Rotation,
	hashes [][]byte, expires []time.Time, r *store.AuditRecord) (verdict, family string, err error) {
	args := []any{rot != nil, nil, nil, nil, nil, nil, nil, nil, nil,
		hashes, expires, now,
		r.Instance, r.Seq, r.Prev, r.MAC,
		r.Time, r.RequestID, r.Endpoint, r.GrantType, r.ClientID, r.OrgParent, r.OrgChild, r.OrgSupplier,
		r.Subject, r.Audience, nonNilStrings(r.Scopes), r.TokenID, r.Outcome, r.Error}
	var fam *string
	var refused *string
	if rot == nil {
		err = conn.QueryRow(ctx, stmtCommitDecision, args...).Scan(&verdict, &fam, &refused)
	} else {
		n := rot.Next
		copy(args[1:9], []any{rot.OldID, n.FamilyID, n.ID, n.ClientID, n.JKT, nonNil(n.Grant), n.IssuedAt, n.ExpiresAt})
		b := &pgx.Batch{}
		b.Queue(lockFamily, refreshLockClass, n.FamilyID)
		b.Queue(stmtCommitDecision, args...)
		br := conn.SendBatch(ctx, b)
		_, err = br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&verdict, &fam, &refused)
		}
		// Close ends the implicit transaction: only a nil error from it
		// means the decision is committed.
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}
	if fam != nil {
		family = *fam
	}
	return verdict, family, err
}

func readHead(ctx context.Context, conn *pgx.Conn, instance string) (store.AuditHead, error) {
	h := store.AuditHead{Instance: instance}
	err := conn.QueryRow(ctx, "SELECT seq, mac FROM audit_head WHERE instance = $1", instance).Scan(&h.Seq, &h.MAC)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("postgres: read audit head: %w", err)
	}
	return h, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// text makes s storable in a text column: NUL and invalid UTF-8 become
// U+FFFD. The MAC's JSON would turn invalid UTF-8 into U+FFFD anyway.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// textRecord is r with every string storable.
func textRecord(r store.AuditRecord) store.AuditRecord {
	for _, f := range []*string{&r.Instance, &r.RequestID, &r.Endpoint, &r.GrantType, &r.ClientID,
		&r.OrgParent, &r.OrgChild, &r.OrgSupplier, &r.Subject, &r.Audience, &r.TokenID, &r.Outcome, &r.Error} {
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
		&r.Outcome, &r.Error, &r.Prev, &r.MAC)
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

// auditPage is how many records AuditChain reads at a time.
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
