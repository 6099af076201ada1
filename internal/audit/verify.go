package audit

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"iter"
	"slices"

	"github.com/tillit-sts/tillit/internal/store"
)

// Problem is one finding of Verify.
type Problem struct {
	Instance string
	Seq      int64
	What     string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s #%d: %s", p.Instance, p.Seq, p.What)
}

// Break is a break in a chain that was resealed (Reseal): the reseal
// record Seq follows the last intact record After instead of the record
// before it, and says why. What Verify found between the two is reported
// with the break, not as tampering: the operator who holds the key has
// recorded that those records are outside the chain.
type Break struct {
	Seq      int64
	After    int64
	Reason   string
	Problems []Problem
}

// Result is what Verify found in one chain.
type Result struct {
	Instance string
	Records  int64
	Last     store.AuditHead
	// Intact is the last record of the chain's current segment before
	// the first problem: the record a reseal must follow.
	Intact   store.AuditHead
	Problems []Problem
	Breaks   []Break
}

// OK reports whether the chain is intact, apart from resealed breaks.
func (r Result) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds the findings reported for one chain: after a record
// is changed, everything would otherwise be listed.
const maxProblems = 100

// Verify checks one instance's chain: records must come in Seq order.
//
// Every record's MAC must match its content, and every record must follow
// the one before it: the next sequence number, and Prev the MAC of that
// record. The one exception is a reseal record (Reseal) made with the key:
// it follows the last intact record, and the records between are reported
// as its Break rather than as problems.
//
// A chain whose oldest records were removed for retention (Prune) starts
// after record 1: a retention checkpoint made with the key must vouch for
// the record before its first (its Seq and MAC); otherwise the records
// before are missing.
//
// head is the head the store kept, nil when it has none: a chain with
// records and no head, or a head and no records, is a failure, since the
// store writes both in one transaction. want, when not nil, is a head
// recorded elsewhere (the server's log) that the chain must contain: the
// one defence against a log cut short together with its head.
func (k Key) Verify(instance string, records iter.Seq2[store.AuditRecord, error], head, want *store.AuditHead) (Result, error) {
	res := Result{Instance: instance, Last: store.AuditHead{Instance: instance}, Intact: store.AuditHead{Instance: instance}}
	// broken: a problem was found since Intact; its problems start at
	// res.Problems[brokenAt].
	broken, brokenAt := false, 0
	report := func(seq int64, format string, args ...any) {
		if !broken {
			broken, brokenAt = true, len(res.Problems)
		}
		if len(res.Problems) < maxProblems {
			res.Problems = append(res.Problems, Problem{instance, seq, fmt.Sprintf(format, args...)})
		}
	}
	wantSeen := false
	// start is the record before the first one present when that is not
	// #1, which a retention checkpoint must vouch for (vouched): one for
	// start itself, or, when the first record is a reseal that follows
	// start, for any record up to the reseal (those after start are in
	// its break).
	var start *store.AuditHead
	var startHi int64
	vouched := false
	for rec, err := range records {
		if err != nil {
			return res, fmt.Errorf("audit: read %s: %w", instance, err)
		}
		sealed := k.sealed(&rec)
		if res.Records == 0 && rec.Seq > 1 {
			s := store.AuditHead{Instance: instance, Seq: rec.Seq - 1, MAC: rec.Prev}
			if a, err := parseAnchor(rec.TokenID); err == nil && sealed && isReseal(&rec) && a.Seq < rec.Seq {
				s = store.AuditHead{Instance: instance, Seq: a.Seq, MAC: a.MAC}
			}
			res.Last, res.Intact = s, s
			if s.Seq > 0 {
				start, startHi = &s, rec.Seq-1
			}
		}
		res.Records++
		expected := res.Last.Seq + 1
		if sealed && rec.Instance == instance && isReseal(&rec) && rec.Seq >= expected {
			after, err := parseAnchor(rec.TokenID)
			follows := err == nil && after.Seq == res.Intact.Seq && bytes.Equal(after.MAC, res.Intact.MAC) && bytes.Equal(rec.Prev, after.MAC)
			// A reseal after a record that retention has since removed:
			// every record before it is in its break.
			pruned := err == nil && start != nil && after.Seq <= start.Seq
			switch {
			case err != nil:
				report(rec.Seq, "a reseal record that does not name the record it follows")
			case !follows && !pruned:
				report(rec.Seq, "resealed after #%d, not after the last intact record #%d", after.Seq, res.Intact.Seq)
			default:
				b := Break{Seq: rec.Seq, After: after.Seq, Reason: rec.Error}
				if broken {
					b.Problems = slices.Clone(res.Problems[brokenAt:])
					res.Problems = res.Problems[:brokenAt]
				}
				res.Breaks = append(res.Breaks, b)
				broken = false
			}
		} else {
			switch {
			case rec.Instance != instance:
				report(rec.Seq, "record of instance %q in this chain", rec.Instance)
			case rec.Seq > expected:
				report(expected, "records %d to %d are missing", expected, rec.Seq-1)
			case rec.Seq < expected:
				report(rec.Seq, "sequence number repeats or goes back")
			case !bytes.Equal(rec.Prev, res.Last.MAC):
				report(rec.Seq, "does not follow the record before it (a record before it was changed or removed)")
			}
			if !sealed {
				report(rec.Seq, "was changed (its MAC does not match its content)")
			}
			if sealed && start != nil && rec.Instance == instance && isCheckpoint(&rec) {
				a, err := parseAnchor(rec.TokenID)
				vouched = vouched || err == nil && a.Seq >= start.Seq && a.Seq <= startHi &&
					(a.Seq != start.Seq || bytes.Equal(a.MAC, start.MAC))
			}
		}
		if want != nil && rec.Seq == want.Seq {
			wantSeen = true
			if !bytes.Equal(rec.MAC, want.MAC) {
				report(rec.Seq, "differs from the head recorded elsewhere")
			}
		}
		res.Last = store.AuditHead{Instance: instance, Seq: rec.Seq, MAC: rec.MAC}
		if !broken {
			res.Intact = res.Last
		}
	}
	if start != nil && !vouched {
		report(1, "records before #%d are missing: no retention checkpoint vouches for their removal", start.Seq+1)
	}
	if head == nil && res.Records > 0 {
		report(res.Last.Seq, "the chain has no head: its head was removed (or records were added outside the store)")
	}
	if head != nil {
		switch {
		case head.Seq > res.Last.Seq:
			report(res.Last.Seq+1, "the log ends at #%d but its head is #%d: records at the end were removed", res.Last.Seq, head.Seq)
		case head.Seq < res.Last.Seq:
			report(head.Seq+1, "records after the head #%d were added outside the store", head.Seq)
		case !bytes.Equal(head.MAC, res.Last.MAC):
			report(head.Seq, "the last record differs from the head")
		}
	}
	if want != nil && !wantSeen {
		report(want.Seq, "the head recorded elsewhere (#%d) is not in the log: records were removed", want.Seq)
	}
	return res, nil
}

func hmacEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// sealed reports whether rec is as Seal left it: its MAC matches, and its
// strings are UTF-8 (the MAC's JSON would not tell other bytes apart).
func (k Key) sealed(rec *store.AuditRecord) bool {
	return isUTF8(rec) && hmacEqual(k.MAC(rec), rec.MAC)
}

// FormatHead renders a head as "instance:seq:mac" for logs and for
// `tillit audit verify --head`.
func FormatHead(h store.AuditHead) string {
	return fmt.Sprintf("%s:%d:%s", h.Instance, h.Seq, base64.RawURLEncoding.EncodeToString(h.MAC))
}

// ParseHead reads what FormatHead wrote.
func ParseHead(s string) (store.AuditHead, error) {
	var h store.AuditHead
	i := bytes.LastIndexByte([]byte(s), ':')
	if i < 0 {
		return h, fmt.Errorf("audit: head %q is not instance:seq:mac", s)
	}
	j := bytes.LastIndexByte([]byte(s[:i]), ':')
	if j < 0 {
		return h, fmt.Errorf("audit: head %q is not instance:seq:mac", s)
	}
	mac, err := base64.RawURLEncoding.DecodeString(s[i+1:])
	if err != nil {
		return h, fmt.Errorf("audit: head %q: %w", s, err)
	}
	if _, err := fmt.Sscanf(s[j+1:i], "%d", &h.Seq); err != nil || h.Seq < 1 {
		return h, fmt.Errorf("audit: head %q has no sequence number", s)
	}
	h.Instance, h.MAC = s[:j], mac
	return h, nil
}
