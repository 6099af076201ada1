package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// EndpointAudit names the records the log writes about itself: a reseal
// after a break (OutcomeResealed) and a retention checkpoint
// (OutcomePruned). Their TokenID names the chain position they vouch for
// (seq:MAC, see anchor) and their Error says why.
const EndpointAudit = "audit"

// ErrIntact is returned by Reseal for a chain with nothing to reseal.
var ErrIntact = errors.New("audit: the chain is intact: nothing to reseal")

// maxReason bounds the reason a reseal record keeps.
const maxReason = 1000

func isReseal(rec *store.AuditRecord) bool {
	return rec.Endpoint == EndpointAudit && rec.Outcome == OutcomeResealed
}

func isCheckpoint(rec *store.AuditRecord) bool {
	return rec.Endpoint == EndpointAudit && rec.Outcome == OutcomePruned
}

// PruneRecord is the retention checkpoint a store appends when it removes
// the oldest records of instance's chain, through the record through (its
// Seq and MAC), those older than before: Verify accepts a chain that
// starts after record 1 only when such a record vouches for its start.
func PruneRecord(instance string, now time.Time, through store.AuditHead, before time.Time) store.AuditRecord {
	return store.AuditRecord{
		Instance: instance, Time: now, Endpoint: EndpointAudit, Outcome: OutcomePruned,
		TokenID: anchor(through),
		Error:   fmt.Sprintf("retention: records #%d and before, older than %s, removed", through.Seq, before.UTC().Format(time.RFC3339)),
	}
}

// anchor renders a chain position as a record of the log's own holds it in
// TokenID: "seq:MAC" (base64url).
func anchor(h store.AuditHead) string {
	return strconv.FormatInt(h.Seq, 10) + ":" + base64.RawURLEncoding.EncodeToString(h.MAC)
}

func parseAnchor(s string) (store.AuditHead, error) {
	var h store.AuditHead
	seq, mac, ok := strings.Cut(s, ":")
	if !ok {
		return h, fmt.Errorf("audit: %q is not seq:mac", s)
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 0 {
		return h, fmt.Errorf("audit: %q is not seq:mac", s)
	}
	m, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return h, fmt.Errorf("audit: %q: %w", s, err)
	}
	h.Seq, h.MAC = n, m
	return h, nil
}

// Anchor is the chain position a record of the log's own (EndpointAudit)
// vouches for: the record a reseal follows, the last record a retention
// checkpoint removed.
func Anchor(rec store.AuditRecord) (store.AuditHead, error) {
	h, err := parseAnchor(rec.TokenID)
	h.Instance = rec.Instance
	return h, err
}

// ResealRecord is the record that reseals instance's chain after the
// intact record after, saying why: one line, at most maxReason bytes.
func ResealRecord(instance string, now time.Time, after store.AuditHead, reason string) store.AuditRecord {
	reason = strings.Join(strings.Fields(reason), " ")
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "")
	}
	return store.AuditRecord{
		Instance: instance, Time: now, Endpoint: EndpointAudit, Outcome: OutcomeResealed,
		TokenID: anchor(after), Error: reason,
	}
}

// SealAfter seals rec as record seq of its chain, following the record
// after rather than seq-1: the first record of a new segment. Stores call
// it as they call Seal.
func (k Key) SealAfter(rec *store.AuditRecord, seq int64, after store.AuditHead) {
	validUTF8(rec)
	rec.Seq = seq
	rec.Prev = after.MAC
	if rec.Prev == nil {
		rec.Prev = []byte{}
	}
	rec.Time = rec.Time.UTC().Truncate(time.Microsecond)
	rec.MAC = k.MAC(rec)
}

// CheckTip reports, as store.ErrAuditChainBroken, a chain whose head and
// newest record disagree or whose newest record was changed: what a server
// checks before it says it is ready, since it cannot append to such a
// chain.
func CheckTip(k Key, tip store.AuditTip) error {
	var last *store.AuditHead
	if tip.Last != nil {
		last = &store.AuditHead{Instance: tip.Instance, Seq: tip.Last.Seq, MAC: tip.Last.MAC}
	}
	if err := store.CheckAuditTip(tip.Instance, tip.Head, last); err != nil {
		return err
	}
	if tip.Last != nil && !k.sealed(tip.Last) {
		return fmt.Errorf("%w: instance %q: its newest record #%d was changed", store.ErrAuditChainBroken, tip.Instance, tip.Last.Seq)
	}
	return nil
}

// ResealLog is what Reseal needs of a store.
type ResealLog interface {
	AuditHeads(ctx context.Context) ([]store.AuditHead, error)
	AuditChain(ctx context.Context, instance string) iter.Seq2[store.AuditRecord, error]
	ResealAuditChain(ctx context.Context, after store.AuditHead, rec store.AuditRecord) (store.AuditRecord, error)
}

// Reseal is the way out of a broken chain: it verifies instance's chain,
// and if it is not intact appends a reseal record after its last intact
// record, saying why (reason, and the first problem found), and makes it
// the head, so that the instance can append again. Nothing is removed:
// the records after the break stay, outside the chain, and Verify reports
// the break with what it found there. It returns ErrIntact for a chain
// with no problem.
//
// Only someone who holds the key can reseal, as only they can write a
// record: a reseal is the operator's signed statement that the chain broke
// there, never a way for someone without the key to hide a change.
func Reseal(ctx context.Context, k Key, log ResealLog, instance string, now time.Time, reason string) (store.AuditRecord, error) {
	heads, err := log.AuditHeads(ctx)
	if err != nil {
		return store.AuditRecord{}, err
	}
	var head *store.AuditHead
	for i := range heads {
		if heads[i].Instance == instance {
			head = &heads[i]
		}
	}
	res, err := k.Verify(instance, log.AuditChain(ctx, instance), head, nil)
	if err != nil {
		return store.AuditRecord{}, err
	}
	if res.Records == 0 && head == nil {
		return store.AuditRecord{}, fmt.Errorf("audit: instance %q has no records and no head", instance)
	}
	if res.OK() {
		return store.AuditRecord{}, ErrIntact
	}
	if reason == "" {
		reason = "resealed"
	}
	reason += "; found: " + res.Problems[0].What
	if n := len(res.Problems); n > 1 {
		reason += fmt.Sprintf(" (and %d more)", n-1)
	}
	rec := ResealRecord(instance, now, res.Intact, reason)
	return log.ResealAuditChain(ctx, res.Intact, rec)
}
