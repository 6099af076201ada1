package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// Tampered is a store whose database a test can change behind its back,
// as someone with access to the database (or an accident) could.
type Tampered struct {
	Store store.Store
	// Exec runs SQL on the database, outside the store.
	Exec func(t *testing.T, query string)
	// Reopen opens another store on the same database, as a server
	// started later would, closed when t ends.
	Reopen func(t *testing.T) store.Store
}

// RunTampered runs the conformance tests that change the database outside
// the store: a chain whose head or newest records were removed is refused,
// never forked or restarted, until it is resealed. open must return a
// fresh, empty store sealing with AuditKey, as for Run. The SQL is the same
// in every backend.
func RunTampered(t *testing.T, open func(t *testing.T) Tampered) {
	t.Run("BrokenChain", func(t *testing.T) { testBrokenChain(t, open) })
	t.Run("PrunedTampered", func(t *testing.T) { testPrunedTampered(t, open) })
	t.Run("IntactChainNotResealed", func(t *testing.T) {
		tp := open(t)
		commitN(t, tp.Store, "sts", 2)
		if _, err := audit.Reseal(t.Context(), AuditKey, tp.Store, "sts", base, "test"); !errors.Is(err, audit.ErrIntact) {
			t.Fatalf("Reseal of an intact chain: %v, want %v", err, audit.ErrIntact)
		}
	})
}

func commitN(t *testing.T, s store.Store, instance string, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.CommitDecision(t.Context(), base, store.Decision{Audit: decision(instance, "c1", i)}); err != nil {
			t.Fatalf("CommitDecision: %v", err)
		}
	}
}

func testBrokenChain(t *testing.T, open func(t *testing.T) Tampered) {
	tests := []struct {
		name   string
		tamper string
		// running: the store that wrote the chain must notice too, not
		// only one opened on the database later (a restarted server).
		running bool
	}{
		{name: "head removed", tamper: "DELETE FROM audit_head WHERE instance = 'sts'", running: true},
		{name: "head rolled back", running: true,
			tamper: "UPDATE audit_head SET seq = 2, mac = (SELECT mac FROM audit_log WHERE instance = 'sts' AND seq = 2) WHERE instance = 'sts'"},
		{name: "newest record removed", tamper: "DELETE FROM audit_log WHERE instance = 'sts' AND seq = 3"},
		{name: "every record removed", tamper: "DELETE FROM audit_log WHERE instance = 'sts'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := open(t)
			ctx := t.Context()
			commitN(t, tp.Store, "sts", 3)
			tp.Exec(t, tt.tamper)
			stores := []store.Store{tp.Reopen(t)}
			if tt.running {
				stores = append(stores, tp.Store)
			}
			before, err := tp.Store.AuditRecords(ctx, store.AuditFilter{Instance: "sts"})
			if err != nil {
				t.Fatal(err)
			}
			step(t, "the tip shows the break", func(t *testing.T) {
				tip, err := tp.Store.AuditTip(ctx, "sts")
				if err != nil {
					t.Fatal(err)
				}
				if err := audit.CheckTip(AuditKey, tip); !errors.Is(err, store.ErrAuditChainBroken) {
					t.Fatalf("CheckTip = %v, want %v", err, store.ErrAuditChainBroken)
				}
			})
			step(t, "decisions are refused and write nothing", func(t *testing.T) {
				for i, s := range stores {
					j := jti("a|refused", time.Minute)
					_, err := s.CommitDecision(ctx, base, store.Decision{JTIs: []store.JTI{j}, Audit: decision("sts", "c1", 10+i)})
					if !errors.Is(err, store.ErrAuditChainBroken) {
						t.Fatalf("store %d: CommitDecision = %v, want %v", i, err, store.ErrAuditChainBroken)
					}
				}
				if err := tp.Store.ConsumeJTIs(ctx, base, []store.JTI{jti("a|refused", time.Minute)}); err != nil {
					t.Errorf("the jti of a refused decision was spent: %v", err)
				}
				after, err := tp.Store.AuditRecords(ctx, store.AuditFilter{Instance: "sts"})
				if err != nil || len(after) != len(before) {
					t.Fatalf("%d records after the refusals, %v; want the %d there were", len(after), err, len(before))
				}
			})
			step(t, "other chains go on", func(t *testing.T) {
				commitN(t, tp.Store, "sts-other", 1)
			})
			var reseal store.AuditRecord
			step(t, "resealed", func(t *testing.T) {
				var err error
				reseal, err = audit.Reseal(ctx, AuditKey, tp.Store, "sts", base, "the test broke it")
				if err != nil {
					t.Fatal(err)
				}
				if reseal.Endpoint != audit.EndpointAudit || reseal.Outcome != audit.OutcomeResealed {
					t.Fatalf("reseal record %+v", reseal)
				}
				tip, err := tp.Store.AuditTip(ctx, "sts")
				if err != nil {
					t.Fatal(err)
				}
				if err := audit.CheckTip(AuditKey, tip); err != nil {
					t.Fatalf("CheckTip after the reseal: %v", err)
				}
			})
			step(t, "decisions are written again", func(t *testing.T) {
				for i, s := range stores {
					rec, err := s.CommitDecision(ctx, base, store.Decision{Audit: decision("sts", "c1", 20+i)})
					if err != nil {
						t.Fatalf("store %d: CommitDecision after the reseal: %v", i, err)
					}
					if rec.Seq != reseal.Seq+int64(i)+1 {
						t.Fatalf("store %d: seq %d after the reseal #%d", i, rec.Seq, reseal.Seq)
					}
				}
			})
			step(t, "verify reports the break, and nothing else", func(t *testing.T) {
				heads, err := tp.Store.AuditHeads(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var head *store.AuditHead
				for i := range heads {
					if heads[i].Instance == "sts" {
						head = &heads[i]
					}
				}
				res, err := AuditKey.Verify("sts", tp.Store.AuditChain(ctx, "sts"), head, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK() || len(res.Breaks) != 1 || res.Breaks[0].Seq != reseal.Seq {
					t.Fatalf("problems %v, breaks %+v; want only the resealed break at #%d", res.Problems, res.Breaks, reseal.Seq)
				}
			})
		})
	}
}
