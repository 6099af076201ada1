package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// AuditKey is the audit key the stores given to Run must seal records
// with (the backends' Options.AuditKey).
var AuditKey = func() audit.Key {
	k, err := audit.DeriveKey([]byte("storetest key-encryption key 32b"))
	if err != nil {
		panic(err)
	}
	return k
}()

func decision(instance, client string, i int) store.AuditRecord {
	return store.AuditRecord{
		Instance: instance, Time: base.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprintf("req-%d", i),
		ClientRequestID: fmt.Sprintf("from-the-client-%d", i),
		Endpoint:        "token", GrantType: "client_credentials", ClientID: client,
		OrgParent: "994598759", OrgChild: "912345678", OrgSupplier: "987654321",
		Subject: "tzto6gPhyTQw2bR/Wl0kgF/mTH+jdQoUBvaYSObfmlQ=", Audience: "nhn:deft",
		Scopes: []string{"nhn:deft/api", "ø"}, TokenID: fmt.Sprintf("T%d", i), Outcome: audit.OutcomeIssued,
	}
}

func verifyChain(t *testing.T, s store.Store, instance string, want int64) {
	t.Helper()
	heads, err := s.AuditHeads(t.Context())
	if err != nil {
		t.Fatalf("AuditHeads: %v", err)
	}
	var head *store.AuditHead
	for i := range heads {
		if heads[i].Instance == instance {
			head = &heads[i]
		}
	}
	res, err := AuditKey.Verify(instance, s.AuditChain(t.Context(), instance), head, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !res.OK() || res.Records != want || head == nil || head.Seq != want {
		t.Fatalf("chain %s: %d records, head %+v, problems %v; want %d intact", instance, res.Records, head, res.Problems, want)
	}
}

// runAudit is the conformance suite of the audit log.
func runAudit(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("AppendAndRead", func(t *testing.T) { testAuditAppendAndRead(t, open) })
	t.Run("Details", func(t *testing.T) { testAuditDetails(t, open) })
	t.Run("ReplayWritesNothing", func(t *testing.T) { testAuditReplayWritesNothing(t, open) })
	t.Run("ExpectDecision", func(t *testing.T) { testAuditExpectDecision(t, open) })
	t.Run("Rotation", func(t *testing.T) { testAuditRotation(t, open) })
	t.Run("RevokeFamily", func(t *testing.T) { testAuditRevokeFamily(t, open) })
	t.Run("RotationRefused", func(t *testing.T) { testAuditRotationRefused(t, open) })
	t.Run("StoredAsReturned", func(t *testing.T) { testAuditStoredAsReturned(t, open) })
	t.Run("ConcurrentInstances", func(t *testing.T) { testAuditConcurrentInstances(t, open) })
	t.Run("ConcurrentRotation", func(t *testing.T) { testAuditConcurrentRotation(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testAuditConcurrent(t, open) })
	t.Run("Filters", func(t *testing.T) { testAuditFilters(t, open) })
	t.Run("Instances", func(t *testing.T) { testAuditInstances(t, open) })
	t.Run("Prune", func(t *testing.T) { testAuditPrune(t, open) })
}

// step runs one step of a sequence of subtests that share a store, and
// stops the sequence at the first that fails: the later steps build on it.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

func testAuditAppendAndRead(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	var written []store.AuditRecord
	step(t, "each instance numbers its own chain", func(t *testing.T) {
		for i := range 6 {
			instance := []string{"sts-a", "sts-b"}[i%2]
			rec, err := s.CommitDecision(ctx, base, store.Decision{Audit: decision(instance, "c1", i)})
			if err != nil {
				t.Fatalf("CommitDecision: %v", err)
			}
			if want := int64(i/2 + 1); rec.Seq != want || len(rec.MAC) == 0 {
				t.Fatalf("record %d: seq %d, want %d; MAC %x", i, rec.Seq, want, rec.MAC)
			}
			written = append(written, rec)
		}
	})
	step(t, "read back as returned", func(t *testing.T) {
		got, err := s.AuditRecords(ctx, store.AuditFilter{Instance: "sts-a"})
		if err != nil || len(got) != 3 {
			t.Fatalf("AuditRecords: %d, %v", len(got), err)
		}
		for i, r := range got {
			checkStoreTime(t, "Time", r.Time)
			want := written[2*i]
			want.Time = canonTime(want.Time)
			r.Time = canonTime(r.Time)
			if !reflect.DeepEqual(emptyToNil(r), emptyToNil(want)) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, r, want)
			}
		}
	})
	step(t, "both chains verify", func(t *testing.T) {
		verifyChain(t, s, "sts-a", 3)
		verifyChain(t, s, "sts-b", 3)
	})
}

func testAuditDetails(t *testing.T, open func(t *testing.T) store.Store) {
	// A record of its own kind (the refusals aggregate) carries its
	// details, stored as given and covered by the MAC.
	s := open(t)
	ctx := t.Context()
	rec := store.AuditRecord{Instance: "sts", Time: base, Endpoint: audit.EndpointAggregate,
		Outcome: audit.OutcomeRefusedAggregate, Details: `{"total":3,"top_sources":[{"address":"192.0.2.1","count":3}]}`}
	written, err := s.CommitDecision(ctx, base, store.Decision{Audit: rec})
	if err != nil {
		t.Fatalf("CommitDecision: %v", err)
	}
	if _, err := s.CommitDecision(ctx, base, store.Decision{Audit: decision("sts", "c1", 1)}); err != nil {
		t.Fatalf("CommitDecision: %v", err)
	}
	got, err := s.AuditRecords(ctx, store.AuditFilter{Instance: "sts"})
	if err != nil || len(got) != 2 {
		t.Fatalf("AuditRecords: %d, %v", len(got), err)
	}
	if got[0].Details != rec.Details || written.Details != rec.Details || got[1].Details != "" {
		t.Fatalf("details %q, returned %q, then %q", got[0].Details, written.Details, got[1].Details)
	}
	verifyChain(t, s, "sts", 2)
}

func testAuditReplayWritesNothing(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	j := []store.JTI{jti("a|x", time.Minute), jti("p|y", time.Minute)}
	step(t, "first decision", func(t *testing.T) {
		if _, err := s.CommitDecision(ctx, base, store.Decision{JTIs: j, Audit: decision("sts", "c1", 1)}); err != nil {
			t.Fatal(err)
		}
	})
	step(t, "replayed proof refuses the whole decision", func(t *testing.T) {
		_, err := s.CommitDecision(ctx, base, store.Decision{JTIs: []store.JTI{jti("a|z", time.Minute), j[1]}, Audit: decision("sts", "c1", 2)})
		checkReplay(t, "replayed proof jti", err, "p|y")
		if err := s.ConsumeJTIs(ctx, base, []store.JTI{jti("a|z", time.Minute)}); err != nil {
			t.Errorf("the fresh key of a refused decision was spent: %v", err)
		}
	})
	step(t, "a refusal is recorded on its own", func(t *testing.T) {
		refused := decision("sts", "c1", 3)
		refused.Outcome, refused.Error, refused.TokenID = audit.OutcomeRefused, "invalid_client", ""
		if _, err := s.CommitDecision(ctx, base, store.Decision{Audit: refused}); err != nil {
			t.Fatal(err)
		}
		verifyChain(t, s, "sts", 2)
	})
}

// A decision announced and committed through its Pending is written as
// CommitDecision writes it; a refused one leaves the Pending usable for the
// refusal.
func testAuditExpectDecision(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	j := []store.JTI{jti("a|pending", time.Minute)}
	step(t, "committed through a Pending", func(t *testing.T) {
		p := s.ExpectDecision()
		defer p.Close()
		if _, err := p.Commit(ctx, base, store.Decision{JTIs: j, Audit: decision("sts", "c1", 1)}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	})
	step(t, "a refused commit leaves the Pending for the refusal", func(t *testing.T) {
		q := s.ExpectDecision()
		defer q.Close()
		_, err := q.Commit(ctx, base, store.Decision{JTIs: j, Audit: decision("sts", "c1", 2)})
		checkReplay(t, "replayed through a Pending", err, "a|pending")
		refused := decision("sts", "c1", 3)
		refused.Outcome, refused.Error, refused.TokenID = audit.OutcomeRefused, "invalid_client", ""
		if _, err := q.Commit(ctx, base, store.Decision{Audit: refused}); err != nil {
			t.Fatalf("the refusal through the same Pending: %v", err)
		}
		verifyChain(t, s, "sts", 2)
	})
}

func testAuditRotation(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	// Unbound, so that no retry grace (testRefreshRetryGrace) applies.
	if err := s.CreateRefreshToken(ctx, unbound(refreshToken("rt-1", "fam-1"))); err != nil {
		t.Fatal(err)
	}
	rotate := func(old, next string, keys ...string) error {
		var jtis []store.JTI
		for _, k := range keys {
			jtis = append(jtis, jti(k, time.Minute))
		}
		_, err := s.CommitDecision(ctx, base, store.Decision{
			JTIs:   jtis,
			Rotate: &store.Rotation{OldID: old, Next: unbound(refreshToken(next, "fam-1"))},
			Audit:  decision("sts", "c1", 1),
		})
		return err
	}
	step(t, "first rotation", func(t *testing.T) {
		if err := rotate("rt-1", "rt-2", "a|1"); err != nil {
			t.Fatalf("first rotation: %v", err)
		}
		if got := mustRefresh(t, s, "rt-1"); got.Status != store.RefreshRotated {
			t.Fatalf("old token %s", got.Status)
		}
	})
	step(t, "replayed jti writes nothing", func(t *testing.T) {
		checkReplay(t, "replayed jti", rotate("rt-2", "rt-3", "a|1"), "a|1")
		if got := mustRefresh(t, s, "rt-2"); got.Status != store.RefreshActive {
			t.Fatalf("a refused decision rotated the token: %s", got.Status)
		}
	})
	step(t, "reuse revokes the family and writes nothing else", func(t *testing.T) {
		if err := rotate("rt-1", "rt-x", "a|2"); !errors.Is(err, store.ErrRefreshReused) {
			t.Fatalf("reuse: err = %v, want %v", err, store.ErrRefreshReused)
		}
		if got := mustRefresh(t, s, "rt-2"); got.Status != store.RefreshRevoked {
			t.Fatalf("family not revoked on reuse: %s", got.Status)
		}
		if err := s.ConsumeJTIs(ctx, base, []store.JTI{jti("a|2", time.Minute)}); err != nil {
			t.Errorf("the jti of a refused decision was spent: %v", err)
		}
	})
	step(t, "revoked token", func(t *testing.T) {
		if err := rotate("rt-2", "rt-3", "a|3"); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("revoked token: err = %v, want %v", err, store.ErrRevoked)
		}
	})
	step(t, "unknown token", func(t *testing.T) {
		if err := rotate("nope", "rt-4", "a|4"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown token: err = %v, want %v", err, store.ErrNotFound)
		}
	})
	step(t, "one record in the chain", func(t *testing.T) { verifyChain(t, s, "sts", 1) })
}

func testAuditRevokeFamily(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	for _, rt := range []store.RefreshToken{refreshToken("rt-1", "fam-1"), refreshToken("rt-2", "fam-1"), refreshToken("rt-3", "fam-2")} {
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	revoke := func(family, key string, i int) error {
		_, err := s.CommitDecision(ctx, base, store.Decision{
			JTIs: []store.JTI{jti(key, time.Minute)}, RevokeFamily: family, Audit: decision("sts", "c1", i),
		})
		return err
	}
	step(t, "revokes the family only", func(t *testing.T) {
		if err := revoke("fam-1", "a|1", 1); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]store.RefreshStatus{"rt-1": store.RefreshRevoked, "rt-2": store.RefreshRevoked, "rt-3": store.RefreshActive} {
			if got := mustRefresh(t, s, id); got.Status != want {
				t.Errorf("%s: %s, want %s", id, got.Status, want)
			}
		}
	})
	step(t, "replayed jti revokes and records nothing", func(t *testing.T) {
		checkReplay(t, "replayed jti", revoke("fam-2", "a|1", 2), "a|1")
		if got := mustRefresh(t, s, "rt-3"); got.Status != store.RefreshActive {
			t.Errorf("a refused decision revoked a family: rt-3 %s", got.Status)
		}
	})
	step(t, "revoking and rotating at once is refused", func(t *testing.T) {
		_, err := s.CommitDecision(ctx, base, store.Decision{
			JTIs:         []store.JTI{jti("a|3", time.Minute)},
			Rotate:       &store.Rotation{OldID: "rt-3", Next: refreshToken("rt-4", "fam-2")},
			RevokeFamily: "fam-2", Audit: decision("sts", "c1", 3),
		})
		if err == nil {
			t.Fatal("a decision that rotates and revokes was accepted")
		}
		if got := mustRefresh(t, s, "rt-3"); got.Status != store.RefreshActive {
			t.Errorf("rt-3 %s after a refused decision", got.Status)
		}
	})
	step(t, "an unknown family is no error", func(t *testing.T) {
		if err := revoke("fam-none", "a|4", 4); err != nil {
			t.Errorf("unknown family: %v", err)
		}
	})
	step(t, "two records in the chain", func(t *testing.T) { verifyChain(t, s, "sts", 2) })
}

func testAuditRotationRefused(t *testing.T, open func(t *testing.T) store.Store) {
	expired := refreshToken("rt-old", "fam-1")
	expired.ExpiresAt = base
	tests := []struct {
		name   string
		token  store.RefreshToken
		family string // of the next token
		// wantErr is the sentinel the error must match; nil means
		// any error that names the family.
		wantErr error
	}{
		{name: "expired", token: expired, family: "fam-1", wantErr: store.ErrRevoked},
		{name: "next token of another family", token: refreshToken("rt-old", "fam-1"), family: "fam-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			if err := s.CreateRefreshToken(ctx, tt.token); err != nil {
				t.Fatal(err)
			}
			_, err := s.CommitDecision(ctx, base, store.Decision{
				JTIs:   []store.JTI{jti("a|1", time.Minute)},
				Rotate: &store.Rotation{OldID: "rt-old", Next: refreshToken("rt-new", tt.family)},
				Audit:  decision("sts", "c1", 1),
			})
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (err == nil || !strings.Contains(err.Error(), "family")):
				t.Fatalf("err = %v, want an error about the family", err)
			}
			// Nothing was written.
			if got := mustRefresh(t, s, "rt-old"); got.Status != store.RefreshActive {
				t.Errorf("old token %s, want it untouched", got.Status)
			}
			if _, err := s.RefreshToken(ctx, "rt-new"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("next token: err = %v, want %v", err, store.ErrNotFound)
			}
			if err := s.ConsumeJTIs(ctx, base, []store.JTI{jti("a|1", time.Minute)}); err != nil {
				t.Errorf("the jti of a refused decision was spent: %v", err)
			}
			if heads, err := s.AuditHeads(ctx); err != nil || len(heads) != 0 {
				t.Errorf("AuditHeads = %v, %v; want none", heads, err)
			}
		})
	}
}

// Strings a client controls (a grant_type in a refusal) may hold bytes
// a backend cannot keep as they are; what CommitDecision returns is
// what is stored and what the MAC covers.
func testAuditStoredAsReturned(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	rec := decision("sts", "", 1)
	rec.GrantType, rec.RequestID = "client\x00credentials\xff\xfe", "req-\u00e6\u00f8\u00e5"
	rec.Scopes, rec.Outcome, rec.Error, rec.TokenID = nil, audit.OutcomeRefused, "unsupported_grant_type", ""
	got, err := s.CommitDecision(ctx, base, store.Decision{Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestID != rec.RequestID || got.Seq != 1 {
		t.Errorf("returned %+v, want the request ID %q kept and seq 1", got, rec.RequestID)
	}
	// The MAC covers the stored bytes only when they are UTF-8 (see
	// audit.Key.Seal): what is not is replaced, in every backend.
	if !utf8.ValidString(got.GrantType) || !strings.HasSuffix(got.GrantType, "credentials\uFFFD") {
		t.Errorf("grant_type stored as %q, want its invalid bytes replaced by U+FFFD", got.GrantType)
	}
	stored, err := s.AuditRecords(ctx, store.AuditFilter{})
	if err != nil || len(stored) != 1 {
		t.Fatalf("AuditRecords = %d records, %v", len(stored), err)
	}
	got.Time, stored[0].Time = canonTime(got.Time), canonTime(stored[0].Time)
	if !reflect.DeepEqual(emptyToNil(stored[0]), emptyToNil(got)) {
		t.Errorf("stored\n %+v\nreturned\n %+v", stored[0], got)
	}
	verifyChain(t, s, "sts", 1)
}

func testAuditConcurrentInstances(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	instances := []string{"sts-a", "sts-b", "sts-c"}
	errs := race(goroutines, func(i int) error {
		_, err := s.CommitDecision(t.Context(), base, store.Decision{
			JTIs:  []store.JTI{jti(fmt.Sprintf("k%d", i), time.Minute)},
			Audit: decision(instances[i%len(instances)], "c1", i),
		})
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, inst := range instances {
		verifyChain(t, s, inst, int64((goroutines-i+len(instances)-1)/len(instances)))
	}
}

func testAuditConcurrentRotation(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	if err := s.CreateRefreshToken(ctx, unbound(refreshToken("rt-1", "fam-1"))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CommitDecision(ctx, base, store.Decision{
				JTIs:   []store.JTI{jti(fmt.Sprintf("a|%d", i), time.Minute)},
				Rotate: &store.Rotation{OldID: "rt-1", Next: unbound(refreshToken(fmt.Sprintf("next-%d", i), "fam-1"))},
				Audit:  decision("sts", "c1", i),
			})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrRefreshReused), errors.Is(err, store.ErrRevoked):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d decisions rotated one token, want exactly 1", wins)
	}
	verifyChain(t, s, "sts", 1)
}

func testAuditConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CommitDecision(t.Context(), base, store.Decision{JTIs: []store.JTI{jti(fmt.Sprintf("k%d", i), time.Minute)}, Audit: decision("sts", "c1", i)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	verifyChain(t, s, "sts", goroutines)
}

func testAuditFilters(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	for i := range 10 {
		rec := decision("sts", []string{"c1", "c2"}[i%2], i)
		if i >= 8 {
			rec.Outcome, rec.Error = audit.OutcomeRefused, "invalid_scope"
		}
		if _, err := s.CommitDecision(ctx, base, store.Decision{Audit: rec}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want []int64 // seqs
	}{
		{"client", store.AuditFilter{ClientID: "c2"}, []int64{2, 4, 6, 8, 10}},
		{"outcome", store.AuditFilter{Outcome: audit.OutcomeRefused}, []int64{9, 10}},
		{"time window", store.AuditFilter{Since: base.Add(3 * time.Second), Until: base.Add(5 * time.Second)}, []int64{4, 5}},
		{"after seq", store.AuditFilter{Instance: "sts", AfterSeq: 8}, []int64{9, 10}},
		{"first three", store.AuditFilter{Limit: 3}, []int64{1, 2, 3}},
		{"newest three", store.AuditFilter{Limit: 3, Newest: true}, []int64{8, 9, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditRecords(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, r := range got {
				seqs = append(seqs, r.Seq)
			}
			if !reflect.DeepEqual(seqs, tt.want) {
				t.Errorf("seqs %v, want %v", seqs, tt.want)
			}
		})
	}
}

// AuditInstances lists the instances that have records, from the records
// themselves: verifying a log must not depend on the heads, which are
// only rows an attacker may delete.
func testAuditInstances(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	step(t, "none in an empty log", func(t *testing.T) {
		got, err := s.AuditInstances(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("AuditInstances = %q, %v; want none", got, err)
		}
	})
	step(t, "each once, in byte order", func(t *testing.T) {
		for i, inst := range []string{"sts-b", "sts-a", "sts-b", "STS-c"} {
			if _, err := s.CommitDecision(ctx, base, store.Decision{Audit: decision(inst, "c1", i)}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.AuditInstances(ctx)
		if want := []string{"STS-c", "sts-a", "sts-b"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("AuditInstances = %q, %v; want %q", got, err, want)
		}
	})
	step(t, "not an instance whose only decision was refused", func(t *testing.T) {
		j := jti("a|1", time.Minute)
		if _, err := s.CommitDecision(ctx, base, store.Decision{JTIs: []store.JTI{j}, Audit: decision("sts-a", "c1", 9)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.CommitDecision(ctx, base, store.Decision{JTIs: []store.JTI{j}, Audit: decision("sts-d", "c1", 10)})
		checkReplay(t, "replayed jti", err, "a|1")
		got, err := s.AuditInstances(ctx)
		if want := []string{"STS-c", "sts-a", "sts-b"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("AuditInstances = %q, %v; want %q", got, err, want)
		}
	})
}
