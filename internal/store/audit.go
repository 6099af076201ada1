package store

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"time"
)

// AuditRecord is one decision of the token service: a token issued, an
// answer given or a request refused; or a record of its own kind, such as
// the aggregate of the refusals that get no record each. Records are append-only; each
// instance writes its own chain, in which Seq counts from 1 and every
// record carries the MAC of the one before it (Prev) and its own (MAC).
// The store sets Seq, Prev and MAC when it appends, in commit order, with
// the audit key it was given (see internal/audit).
type AuditRecord struct {
	Instance string
	Seq      int64
	Time     time.Time
	// RequestID is the server's ID of the request (package requestid);
	// ClientRequestID the X-Request-Id its client sent, if any, which
	// proves nothing and is kept apart so that it cannot pass for one.
	RequestID       string
	ClientRequestID string
	// Endpoint is "token", "introspection" or "revocation" (later also
	// "par", "authorize"), "aggregate" for the refusals aggregate, or
	// "audit" for the log's own records.
	Endpoint    string
	GrantType   string
	ClientID    string
	OrgParent   string
	OrgChild    string
	OrgSupplier string
	// Subject is the person's pseudonym (the token's sub), never the pid.
	Subject  string
	Audience string
	Scopes   []string
	// TokenID is the jti of the token issued, or introspected; the
	// family of the refresh token revoked.
	TokenID string
	// Outcome is one of audit.Outcomes ("issued", "refused", …); Error
	// the OAuth error code of a refusal.
	Outcome string
	Error   string
	// Details is what a record of its own kind says beyond the fields
	// above, as JSON (the refusals aggregate: audit.RefusalSummary);
	// empty for a decision about one request.
	Details string
	Prev    []byte
	MAC     []byte
}

// AuditHead is the last record of an instance's chain, kept by the store in
// the transaction of every append so that a log cut short is noticed.
type AuditHead struct {
	Instance string
	Seq      int64
	MAC      []byte
}

// AuditTip is the end of an instance's chain as the store has it: its head
// and its newest record (the greatest Seq), nil when there is none.
type AuditTip struct {
	Instance string
	Head     *AuditHead
	Last     *AuditRecord
}

// CheckAuditTip reports, as ErrAuditChainBroken, a chain whose head and
// newest record (last: its Seq and MAC) disagree. The store writes both in
// one transaction, so they disagree only after a change outside it: a head
// removed or rolled back, records removed at the end or added.
func CheckAuditTip(instance string, head, last *AuditHead) error {
	switch {
	case head == nil && last == nil:
		return nil
	case head == nil:
		return fmt.Errorf("%w: instance %q has records up to #%d but no head (removed outside the store)", ErrAuditChainBroken, instance, last.Seq)
	case last == nil:
		return fmt.Errorf("%w: instance %q has a head (#%d) but no records", ErrAuditChainBroken, instance, head.Seq)
	case head.Seq > last.Seq:
		return fmt.Errorf("%w: instance %q: its newest records (#%d to #%d) were removed", ErrAuditChainBroken, instance, last.Seq+1, head.Seq)
	case head.Seq < last.Seq:
		return fmt.Errorf("%w: instance %q: records after its head #%d were added outside the store", ErrAuditChainBroken, instance, head.Seq)
	case !bytes.Equal(head.MAC, last.MAC):
		return fmt.Errorf("%w: instance %q: its newest record #%d differs from its head", ErrAuditChainBroken, instance, head.Seq)
	}
	return nil
}

// AuditFilter selects audit records. Zero fields match everything.
type AuditFilter struct {
	Instance string
	// AfterSeq returns records with a greater Seq (with Instance set).
	AfterSeq int64
	Since    time.Time
	Until    time.Time
	ClientID string
	Outcome  string
	// Limit bounds the number of records; zero means no limit.
	Limit int
	// Newest returns the last Limit records (still in ascending order)
	// instead of the first.
	Newest bool
}

// Decision is what the token endpoint commits for one request, in one
// transaction: the single-use values it spends, the refresh token it
// rotates or the family it revokes, and its audit record.
type Decision struct {
	JTIs []JTI
	// Rotate, when set, spends the refresh token OldID and creates Next in
	// its family, as RotateRefreshToken does.
	Rotate *Rotation
	// RevokeFamily, when set, revokes every refresh token of that family,
	// as RevokeRefreshFamily does (the revocation endpoint), so that the
	// record saying so and the revocation are one write. Not with Rotate.
	RevokeFamily string
	Audit        AuditRecord
}

// Pending is a decision announced with Store.ExpectDecision and not yet
// settled.
type Pending interface {
	// Commit is CommitDecision. A commit that succeeds settles the
	// announcement. One that fails leaves it standing: the caller then
	// commits the refusal of its request, which is the decision it
	// announced.
	Commit(ctx context.Context, now time.Time, d Decision) (AuditRecord, error)
	// Close settles the announcement if no commit has; the caller
	// commits nothing more through it. It may be called more than once.
	// An announcement never settled holds later commits open for
	// nothing.
	Close()
}

// Rotation replaces a refresh token by its successor.
type Rotation struct {
	OldID string
	Next  RefreshToken
}

// AuditInstancesQuery lists the distinct instances of audit_log, in both
// backends' SQL: a loose index scan over the primary key (instance, seq)
// that reads one entry per instance rather than every record.
const AuditInstancesQuery = `WITH RECURSIVE i(instance) AS (
	SELECT min(instance) FROM audit_log
	UNION ALL
	SELECT (SELECT min(instance) FROM audit_log WHERE instance > i.instance) FROM i WHERE i.instance IS NOT NULL
) SELECT instance FROM i WHERE instance IS NOT NULL`

// AuditPageSize is how many records ChainPages reads at a time.
const AuditPageSize = 1000

// ChainPages yields one instance's records in sequence order, reading them
// with records a page at a time, so that verifying a long log does not hold
// it all in memory. Backends implement AuditChain with it.
func ChainPages(ctx context.Context, instance string, records func(context.Context, AuditFilter) ([]AuditRecord, error)) iter.Seq2[AuditRecord, error] {
	return func(yield func(AuditRecord, error) bool) {
		after := int64(0)
		for {
			recs, err := records(ctx, AuditFilter{Instance: instance, AfterSeq: after, Limit: AuditPageSize})
			if err != nil {
				yield(AuditRecord{}, err)
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
				after = r.Seq
			}
			if len(recs) < AuditPageSize {
				return
			}
		}
	}
}
