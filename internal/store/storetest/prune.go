package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// verifyPruned verifies instance's chain with its head and returns what
// Verify found.
func verifyPruned(t *testing.T, s store.Store, instance string) audit.Result {
	t.Helper()
	heads, err := s.AuditHeads(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var head *store.AuditHead
	for i := range heads {
		if heads[i].Instance == instance {
			head = &heads[i]
		}
	}
	res, err := AuditKey.Verify(instance, s.AuditChain(t.Context(), instance), head, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func seqs(t *testing.T, s store.Store, instance string) []int64 {
	t.Helper()
	recs, err := s.AuditRecords(t.Context(), store.AuditFilter{Instance: instance})
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

// Retention removes the oldest records of a chain and seals a checkpoint
// that vouches for what it removed, so that the chain still verifies.
func testAuditPrune(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	commitN(t, s, "sts", 10) // times base+0s … base+9s
	commitN(t, s, "sts-other", 2)
	step(t, "nothing older than the cutoff", func(t *testing.T) {
		n, err := s.PruneAuditChain(ctx, "sts", base, base.Add(time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("PruneAuditChain = %d, %v; want 0", n, err)
		}
		if got := seqs(t, s, "sts"); len(got) != 10 {
			t.Fatalf("seqs %v: a prune that removed nothing wrote a record", got)
		}
	})
	step(t, "the records before the cutoff", func(t *testing.T) {
		n, err := s.PruneAuditChain(ctx, "sts", base.Add(5*time.Second), base.Add(time.Hour))
		if err != nil || n != 5 {
			t.Fatalf("PruneAuditChain = %d, %v; want 5", n, err)
		}
		got := seqs(t, s, "sts")
		if len(got) != 6 || got[0] != 6 || got[5] != 11 {
			t.Fatalf("seqs %v, want 6 to 11", got)
		}
		recs, err := s.AuditRecords(ctx, store.AuditFilter{Instance: "sts", AfterSeq: 10})
		if err != nil || len(recs) != 1 || recs[0].Endpoint != audit.EndpointAudit || recs[0].Outcome != audit.OutcomePruned {
			t.Fatalf("checkpoint %+v, %v", recs, err)
		}
		if a, err := audit.Anchor(recs[0]); err != nil || a.Seq != 5 {
			t.Fatalf("checkpoint vouches for %+v, %v; want #5", a, err)
		}
		if res := verifyPruned(t, s, "sts"); !res.OK() || res.Records != 6 {
			t.Fatalf("after pruning: %d records, problems %v", res.Records, res.Problems)
		}
	})
	step(t, "other chains untouched", func(t *testing.T) {
		if got := seqs(t, s, "sts-other"); len(got) != 2 {
			t.Fatalf("sts-other: %v", got)
		}
	})
	step(t, "appending goes on", func(t *testing.T) {
		rec, err := s.CommitDecision(ctx, base, store.Decision{Audit: decision("sts", "c1", 20)})
		if err != nil || rec.Seq != 12 {
			t.Fatalf("CommitDecision = #%d, %v; want #12", rec.Seq, err)
		}
	})
	step(t, "never the newest record", func(t *testing.T) {
		// The checkpoint is as old as the prune that wrote it (now).
		n, err := s.PruneAuditChain(ctx, "sts", base.Add(2*time.Hour), base.Add(2*time.Hour))
		if err != nil || n != 6 {
			t.Fatalf("PruneAuditChain = %d, %v; want 6 (#6 to #11)", n, err)
		}
		if got := seqs(t, s, "sts"); len(got) != 2 || got[0] != 12 || got[1] != 13 {
			t.Fatalf("seqs %v, want the newest record and the checkpoint", got)
		}
		if res := verifyPruned(t, s, "sts"); !res.OK() {
			t.Fatalf("after pruning again: problems %v", res.Problems)
		}
	})
	step(t, "an unknown instance", func(t *testing.T) {
		if n, err := s.PruneAuditChain(ctx, "nobody", base.Add(time.Hour), base.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("PruneAuditChain = %d, %v", n, err)
		}
	})
}

// After pruning, what remains is as tamper-evident as before.
func testPrunedTampered(t *testing.T, open func(t *testing.T) Tampered) {
	tests := []struct {
		name   string
		tamper string
		want   string
	}{
		{"a remaining record changed", "UPDATE audit_log SET client_id = 'x' WHERE instance = 'sts' AND seq = 7", "#7: was changed"},
		{"the oldest remaining record removed", "DELETE FROM audit_log WHERE instance = 'sts' AND seq = 6", "records before #7 are missing"},
		{"the checkpoint removed", "DELETE FROM audit_log WHERE instance = 'sts' AND seq = 11", "records at the end were removed"},
		{"the checkpoint and every record after it removed, head too", "DELETE FROM audit_log WHERE instance = 'sts' AND seq >= 11; " +
			"UPDATE audit_head SET seq = 10, mac = (SELECT mac FROM audit_log WHERE instance = 'sts' AND seq = 10) WHERE instance = 'sts'",
			"records before #6 are missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := open(t)
			commitN(t, tp.Store, "sts", 10)
			if n, err := tp.Store.PruneAuditChain(t.Context(), "sts", base.Add(5*time.Second), base.Add(time.Hour)); err != nil || n != 5 {
				t.Fatalf("PruneAuditChain = %d, %v", n, err)
			}
			for _, q := range splitSQL(tt.tamper) {
				tp.Exec(t, q)
			}
			res := verifyPruned(t, tp.Store, "sts")
			if res.OK() {
				t.Fatal("tampering after pruning not detected")
			}
			found := false
			for _, p := range res.Problems {
				found = found || contains(p.String(), tt.want)
			}
			if !found {
				t.Fatalf("problems %v, want %q", res.Problems, tt.want)
			}
		})
	}
}

func splitSQL(s string) []string {
	var out []string
	for _, q := range strings.Split(s, "; ") {
		if q = strings.TrimSpace(q); q != "" {
			out = append(out, q)
		}
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
