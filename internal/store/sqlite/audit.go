package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// ErrNoAuditKey is returned by CommitDecision on a Store opened without
// Options.AuditKey.
var ErrNoAuditKey = errors.New("sqlite: no audit key: open the store with Options.AuditKey to write audit records")

// auditBatch is the writer's view of the chain heads while one batch runs.
// Heads are read from audit_head at their first use in a batch, inside the
// transaction that holds the write lock, so a chain stays whole even if two
// processes were given the same instance name; they are written back just
// before the commit.
//
// With the head, the first use reads the chain's newest record, and a
// chain whose head and newest record disagree (changed outside the store)
// is refused for the whole batch with store.ErrAuditChainBroken: appending
// to it would fork it (after a head rolled back) or restart it (after a
// head removed). One primary-key lookup per chain and batch.
type auditBatch struct {
	heads  map[string]store.AuditHead
	dirty  map[string]bool
	broken map[string]error
}

func (a *auditBatch) reset() { a.heads, a.dirty, a.broken = nil, nil, nil }

func (a *auditBatch) head(tx *wtx, instance string) (store.AuditHead, error) {
	if h, ok := a.heads[instance]; ok {
		return h, nil
	}
	if err, ok := a.broken[instance]; ok {
		return store.AuditHead{}, err
	}
	if a.heads == nil {
		a.heads, a.dirty, a.broken = map[string]store.AuditHead{}, map[string]bool{}, map[string]error{}
	}
	head, last, err := readTip(tx.queryRow, instance)
	if err != nil {
		return store.AuditHead{}, err
	}
	if err := store.CheckAuditTip(instance, head, last); err != nil {
		err = fmt.Errorf("sqlite: %w", err)
		a.broken[instance] = err
		return store.AuditHead{}, err
	}
	h := store.AuditHead{Instance: instance}
	if head != nil {
		h = *head
	}
	a.heads[instance] = h
	return h, nil
}

// set makes h the head of its chain, to be written at the commit.
func (a *auditBatch) set(h store.AuditHead) {
	if a.heads == nil {
		a.heads, a.dirty, a.broken = map[string]store.AuditHead{}, map[string]bool{}, map[string]error{}
	}
	a.heads[h.Instance], a.dirty[h.Instance] = h, true
	delete(a.broken, h.Instance)
}

// readTip reads an instance's head and the Seq and MAC of its newest
// record, nil when there is none.
func readTip(queryRow func(query string, args ...any) *sql.Row, instance string) (head, last *store.AuditHead, err error) {
	h := store.AuditHead{Instance: instance}
	switch err := queryRow("SELECT seq, mac FROM audit_head WHERE instance = ?", instance).Scan(&h.Seq, &h.MAC); {
	case err == nil:
		head = &h
	case !errors.Is(err, sql.ErrNoRows):
		return nil, nil, fmt.Errorf("sqlite: read audit head: %w", err)
	}
	l := store.AuditHead{Instance: instance}
	switch err := queryRow("SELECT seq, mac FROM audit_log WHERE instance = ? ORDER BY seq DESC LIMIT 1", instance).Scan(&l.Seq, &l.MAC); {
	case err == nil:
		last = &l
	case !errors.Is(err, sql.ErrNoRows):
		return nil, nil, fmt.Errorf("sqlite: read the newest audit record: %w", err)
	}
	return head, last, nil
}

// flush writes the heads this batch moved, in its transaction.
func (a *auditBatch) flush(tx *wtx) error {
	for instance := range a.dirty {
		h := a.heads[instance]
		if _, err := tx.exec(`INSERT INTO audit_head (instance, seq, mac) VALUES (?, ?, ?)
			ON CONFLICT (instance) DO UPDATE SET seq = excluded.seq, mac = excluded.mac`, instance, h.Seq, h.MAC); err != nil {
			return fmt.Errorf("sqlite: write audit head: %w", err)
		}
	}
	a.reset()
	return nil
}

const auditColumns = `instance, seq, time, request_id, endpoint, grant_type, client_id, orgnr_parent, orgnr_child,
	orgnr_supplier, subject, audience, scopes, token_id, outcome, error, prev, mac, client_request_id, details`

// CommitDecision commits one decision of the token endpoint in one
// transaction: it spends d.JTIs (as ConsumeJTIs), rotates d.Rotate (as
// RotateRefreshToken) or revokes d.RevokeFamily, and appends d.Audit to its instance's chain. Either all
// of it is written or none: a spent jti gives a *store.ReplayError, a
// revoked or expired refresh token store.ErrRevoked, an unknown one
// store.ErrNotFound. The one exception is a refresh token that was already
// rotated: that revokes its family (committed) and nothing else is written;
// the error is store.ErrRefreshReused. It returns once everything is
// durable, with the record's place in the chain filled in. Concurrent calls
// share one commit.
func (s *Store) CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error) {
	rec := d.Audit
	if s.auditKey == nil {
		return rec, ErrNoAuditKey
	}
	if rec.Instance == "" {
		return rec, errors.New("sqlite: audit record without an instance")
	}
	if d.Rotate != nil && d.RevokeFamily != "" {
		return rec, errors.New("sqlite: a decision rotates a refresh token or revokes a family, not both")
	}
	jtis := d.JTIs
	for i := range jtis {
		for j := range i {
			if jtis[i].Key == jtis[j].Key {
				return rec, fmt.Errorf("sqlite: twice in one call: %w", &store.ReplayError{Key: jtis[i].Key})
			}
		}
	}
	nowNanos := nanos(now)
	// Written by the writer goroutine; read only once it has answered.
	reused, sealed := false, store.AuditRecord{}
	err := s.writeOp(ctx, true, func(tx *wtx) error {
		// The refresh token first: reuse revokes its family whatever
		// else is wrong with the request, and that is the only write a
		// refused decision makes.
		retry := "" // the successor a retried rotation retires
		if d.Rotate != nil {
			old, err := readRefresh(tx, d.Rotate.OldID)
			if errors.Is(err, store.ErrNotFound) {
				return refuse(err)
			}
			if err != nil {
				return err
			}
			switch {
			case d.Rotate.Next.FamilyID != old.FamilyID:
				return refuse(fmt.Errorf("sqlite: rotate refresh token: next token is of family %q, not %q", d.Rotate.Next.FamilyID, old.FamilyID))
			case old.Status == store.RefreshRotated:
				successor, ok, err := canRetry(tx, now, old)
				if err != nil {
					return err
				}
				if ok {
					retry = successor
					break
				}
				if err := revokeFamily(tx, old.FamilyID); err != nil {
					return err
				}
				reused = true
				return nil
			case old.Status == store.RefreshRevoked, !old.ExpiresAt.After(now):
				return refuse(fmt.Errorf("sqlite: refresh token: %w", store.ErrRevoked))
			}
		}
		// The chain before any write: a broken one refuses the decision.
		h, err := s.audit.head(tx, rec.Instance)
		if err != nil {
			return refuse(err)
		}
		if err := s.checkJTIs(nowNanos, jtis); err != nil {
			return err
		}
		if err := s.recordJTIs(tx, jtis); err != nil {
			return err
		}
		switch {
		case retry != "":
			if err := retryRotation(tx, now, d.Rotate.OldID, retry, d.Rotate.Next); err != nil {
				return err
			}
		case d.Rotate != nil:
			if err := rotate(tx, now, d.Rotate.OldID, d.Rotate.Next); err != nil {
				return err
			}
		}
		if d.RevokeFamily != "" {
			if err := revokeFamily(tx, d.RevokeFamily); err != nil {
				return err
			}
		}
		// Sealed in a copy: a caller that gave up waiting (outcome
		// unknown) returns rec while this may still run.
		out := rec
		s.auditKey.Seal(&out, h.Seq, h.MAC)
		if out.Prev == nil {
			out.Prev = []byte{}
		}
		if err := insertAudit(tx, &out); err != nil {
			return err
		}
		s.audit.set(store.AuditHead{Instance: out.Instance, Seq: out.Seq, MAC: out.MAC})
		sealed = out
		return nil
	})
	switch {
	case err != nil:
		return rec, err
	case reused:
		return rec, fmt.Errorf("sqlite: %w", store.ErrRefreshReused)
	}
	return sealed, nil
}

// insertAudit appends the sealed record rec.
func insertAudit(tx *wtx, rec *store.AuditRecord) error {
	scopes := []byte("[]")
	if rec.Scopes != nil {
		var err error
		if scopes, err = json.Marshal(rec.Scopes); err != nil {
			return err
		}
	}
	if _, err := tx.exec(`INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.Instance, rec.Seq, micros(rec.Time), rec.RequestID, rec.Endpoint, rec.GrantType, rec.ClientID,
		rec.OrgParent, rec.OrgChild, rec.OrgSupplier, rec.Subject, rec.Audience, string(scopes),
		rec.TokenID, rec.Outcome, rec.Error, rec.Prev, rec.MAC, rec.ClientRequestID, rec.Details); err != nil {
		return fmt.Errorf("sqlite: append audit record: %w", err)
	}
	return nil
}

// AuditTip returns instance's head and newest record, read in one
// transaction.
func (s *Store) AuditTip(ctx context.Context, instance string) (store.AuditTip, error) {
	tip := store.AuditTip{Instance: instance}
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return tip, fmt.Errorf("sqlite: read audit tip: %w", err)
	}
	defer tx.Rollback()
	queryRow := func(q string, args ...any) *sql.Row { return tx.QueryRowContext(ctx, q, args...) }
	head, last, err := readTip(queryRow, instance)
	if err != nil {
		return tip, err
	}
	tip.Head = head
	if last != nil {
		rows, err := tx.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit_log WHERE instance = ? AND seq = ?", instance, last.Seq)
		if err != nil {
			return tip, fmt.Errorf("sqlite: read audit tip: %w", err)
		}
		defer rows.Close()
		if rows.Next() {
			r, err := scanAudit(rows)
			if err != nil {
				return tip, fmt.Errorf("sqlite: read audit tip: %w", err)
			}
			tip.Last = &r
		}
		if err := rows.Err(); err != nil {
			return tip, fmt.Errorf("sqlite: read audit tip: %w", err)
		}
	}
	return tip, nil
}

// ResealAuditChain appends rec after a break, as the first record of a new
// segment that follows the intact record after; see store.Store.
func (s *Store) ResealAuditChain(ctx context.Context, after store.AuditHead, rec store.AuditRecord) (store.AuditRecord, error) {
	if s.auditKey == nil {
		return rec, ErrNoAuditKey
	}
	if rec.Instance == "" {
		return rec, errors.New("sqlite: audit record without an instance")
	}
	var sealed store.AuditRecord // written by the writer; read once it answered
	err := s.writeOp(ctx, false, func(tx *wtx) error {
		head, last, err := readTip(tx.queryRow, rec.Instance)
		if err != nil {
			return err
		}
		if h, ok := s.audit.heads[rec.Instance]; ok {
			head = &h // moved by this batch, written at its commit
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
			err := tx.queryRow("SELECT mac FROM audit_log WHERE instance = ? AND seq = ?", rec.Instance, after.Seq).Scan(&mac)
			if errors.Is(err, sql.ErrNoRows) || err == nil && !bytes.Equal(mac, after.MAC) {
				return fmt.Errorf("sqlite: reseal %s after #%d: that record is not there as given: %w", rec.Instance, after.Seq, store.ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("sqlite: reseal: %w", err)
			}
		}
		out := rec // sealed in a copy, as in CommitDecision
		s.auditKey.SealAfter(&out, next, after)
		if err := insertAudit(tx, &out); err != nil {
			return err
		}
		s.audit.set(store.AuditHead{Instance: out.Instance, Seq: out.Seq, MAC: out.MAC})
		sealed = out
		return nil
	})
	if err != nil {
		return rec, err
	}
	return sealed, nil
}

// PruneAuditChain removes the oldest records of instance's chain and seals
// a checkpoint for them; see store.Store.
func (s *Store) PruneAuditChain(ctx context.Context, instance string, before, now time.Time) (int64, error) {
	if s.auditKey == nil {
		return 0, ErrNoAuditKey
	}
	var n int64
	err := s.writeOp(ctx, false, func(tx *wtx) error {
		n = 0
		h, err := s.audit.head(tx, instance)
		if err != nil || h.Seq == 0 {
			return err
		}
		var first, keep sql.NullInt64
		if err := tx.queryRow("SELECT min(seq) FROM audit_log WHERE instance = ?", instance).Scan(&first); err != nil {
			return fmt.Errorf("sqlite: prune audit chain: %w", err)
		}
		if err := tx.queryRow("SELECT min(seq) FROM audit_log WHERE instance = ? AND time >= ?", instance, micros(before)).Scan(&keep); err != nil {
			return fmt.Errorf("sqlite: prune audit chain: %w", err)
		}
		through := h.Seq - 1 // never the newest
		if keep.Valid && keep.Int64-1 < through {
			through = keep.Int64 - 1
		}
		if !first.Valid || through < first.Int64 {
			return nil
		}
		last := store.AuditHead{Instance: instance, Seq: through}
		if err := tx.queryRow("SELECT mac FROM audit_log WHERE instance = ? AND seq = ?", instance, through).Scan(&last.MAC); err != nil {
			return fmt.Errorf("sqlite: prune audit chain: record #%d: %w", through, err)
		}
		res, err := tx.exec("DELETE FROM audit_log WHERE instance = ? AND seq <= ?", instance, through)
		if err != nil {
			return fmt.Errorf("sqlite: prune audit chain: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		rec := audit.PruneRecord(instance, now, last, before)
		s.auditKey.Seal(&rec, h.Seq, h.MAC)
		if err := insertAudit(tx, &rec); err != nil {
			return err
		}
		s.audit.set(store.AuditHead{Instance: instance, Seq: rec.Seq, MAC: rec.MAC})
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func scanAudit(rows *sql.Rows) (store.AuditRecord, error) {
	var r store.AuditRecord
	var t int64
	var scopes string
	err := rows.Scan(&r.Instance, &r.Seq, &t, &r.RequestID, &r.Endpoint, &r.GrantType, &r.ClientID,
		&r.OrgParent, &r.OrgChild, &r.OrgSupplier, &r.Subject, &r.Audience, &scopes, &r.TokenID,
		&r.Outcome, &r.Error, &r.Prev, &r.MAC, &r.ClientRequestID, &r.Details)
	if err != nil {
		return r, err
	}
	r.Time = fromMicros(t)
	if err := json.Unmarshal([]byte(scopes), &r.Scopes); err != nil {
		return r, fmt.Errorf("sqlite: audit record %s #%d: scopes: %w", r.Instance, r.Seq, err)
	}
	return r, nil
}

// AuditRecords returns the records f selects, by instance and sequence.
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Instance != "" {
		add("instance = ?", f.Instance)
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if !f.Since.IsZero() {
		add("time >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", micros(f.Until))
	}
	if f.ClientID != "" {
		add("client_id = ?", f.ClientID)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	q := "SELECT " + auditColumns + " FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	order := " ORDER BY instance, seq"
	if f.Newest {
		order = " ORDER BY time DESC, instance DESC, seq DESC"
	}
	q += order
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.readDB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read audit log: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read audit log: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read audit log: %w", err)
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
	rows, err := s.readDB.QueryContext(ctx, "SELECT instance, seq, mac FROM audit_head ORDER BY instance")
	if err != nil {
		return nil, fmt.Errorf("sqlite: read audit heads: %w", err)
	}
	defer rows.Close()
	var out []store.AuditHead
	for rows.Next() {
		var h store.AuditHead
		if err := rows.Scan(&h.Instance, &h.Seq, &h.MAC); err != nil {
			return nil, fmt.Errorf("sqlite: read audit heads: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// AuditInstances lists every instance that has records, in byte order.
func (s *Store) AuditInstances(ctx context.Context) ([]string, error) {
	rows, err := s.readDB.QueryContext(ctx, store.AuditInstancesQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit instances: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var inst string
		if err := rows.Scan(&inst); err != nil {
			return nil, fmt.Errorf("sqlite: list audit instances: %w", err)
		}
		out = append(out, inst)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit instances: %w", err)
	}
	return out, nil
}
