package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

func chain(t *testing.T, k Key, n int) ([]store.AuditRecord, store.AuditHead) {
	t.Helper()
	var recs []store.AuditRecord
	head := store.AuditHead{Instance: "i1"}
	base := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)
	for i := 0; i < n; i++ {
		r := store.AuditRecord{
			Instance: "i1", Time: base.Add(time.Duration(i) * time.Second), RequestID: "req",
			Endpoint: "token", GrantType: "client_credentials", ClientID: "c1", OrgParent: "310900036",
			Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"}, TokenID: "T", Outcome: OutcomeIssued,
		}
		k.Seal(&r, head.Seq, head.MAC)
		head = store.AuditHead{Instance: "i1", Seq: r.Seq, MAC: r.MAC}
		recs = append(recs, r)
	}
	return recs, head
}

func seq(recs []store.AuditRecord) func(func(store.AuditRecord, error) bool) {
	return func(yield func(store.AuditRecord, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func TestVerify(t *testing.T) {
	k, err := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := DeriveKey([]byte("another key-encryption key, 32 b"))
	tests := []struct {
		name string
		// tamper changes the stored records and head.
		tamper func(recs []store.AuditRecord, head *store.AuditHead) []store.AuditRecord
		// noHead: the store has no head for the chain.
		noHead   bool
		want     *store.AuditHead
		wantSeq  int64
		wantWhat string
	}{
		{"intact", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord { return r }, false, nil, 0, ""},
		{"head removed", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord { return r }, true, nil, 5, "has no head"},
		{"every record removed, head kept", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord { return nil }, false, nil, 1, "records at the end were removed"},
		{"a field changed", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			r[2].ClientID = "someone-else"
			return r
		}, false, nil, 3, "was changed"},
		{"the client's request id added", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			r[2].ClientRequestID = "0123456789abcdef01234567"
			return r
		}, false, nil, 3, "was changed"},
		{"scopes changed", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			r[1].Scopes = append(r[1].Scopes, "e-helse:sfm.api/sfm.api")
			return r
		}, false, nil, 2, "was changed"},
		{"outcome changed and MAC recomputed without the key", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			r[2].Outcome = OutcomeRefused
			r[2].MAC = other.MAC(&r[2])
			return r
		}, false, nil, 3, "was changed"},
		{"a record removed", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			return slices.Delete(r, 2, 3)
		}, false, nil, 3, "records 3 to 3 are missing"},
		{"truncated at the end", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			return r[:len(r)-1]
		}, false, nil, 5, "records at the end were removed"},
		{"truncated and head rolled back, caught by the head logged elsewhere", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			*h = store.AuditHead{Instance: "i1", Seq: r[3].Seq, MAC: r[3].MAC}
			return r[:4]
		}, false, &store.AuditHead{Instance: "i1", Seq: 5}, 5, "not in the log"},
		{"a record added without the head", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			extra := r[4]
			k.Seal(&extra, r[4].Seq, r[4].MAC)
			return append(r, extra)
		}, false, nil, 6, "added outside the store"},
		{"records swapped", func(r []store.AuditRecord, h *store.AuditHead) []store.AuditRecord {
			r[1], r[2] = r[2], r[1]
			return r
		}, false, nil, 2, "are missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, head := chain(t, k, 5)
			want := tt.want
			if want != nil && want.MAC == nil {
				want.MAC = recs[want.Seq-1].MAC
			}
			recs = tt.tamper(recs, &head)
			h := &head
			if tt.noHead {
				h = nil
			}
			res, err := k.Verify("i1", seq(recs), h, want)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantWhat == "" {
				if !res.OK() || res.Records != 5 || res.Last.Seq != 5 {
					t.Fatalf("intact chain: %+v", res)
				}
				return
			}
			if res.OK() {
				t.Fatal("tampering not detected")
			}
			p := res.Problems[0]
			if p.Seq != tt.wantSeq || !strings.Contains(p.What, tt.wantWhat) {
				t.Fatalf("first problem %v, want #%d %q (all: %v)", p, tt.wantSeq, tt.wantWhat, res.Problems)
			}
		})
	}
}

// Two forks of one chain (the same instance and key, each record sealed
// as the store seals it) spliced together: every MAC and sequence number
// is valid and the head matches the last record, but the record taken
// from the other fork does not follow the one before it.
func TestVerifySplicedForks(t *testing.T) {
	k, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	a, _ := chain(t, k, 5)
	b := slices.Clone(a[:3])
	for i := 3; i < 5; i++ {
		r := a[i]
		r.ClientID, r.MAC = "fork-b", nil
		k.Seal(&r, b[i-1].Seq, b[i-1].MAC)
		b = append(b, r)
	}
	spliced := append(slices.Clone(a[:4]), b[4])
	head := store.AuditHead{Instance: "i1", Seq: 5, MAC: b[4].MAC}
	for _, r := range spliced {
		if !hmacEqual(k.MAC(&r), r.MAC) {
			t.Fatalf("#%d: the splice should keep every MAC valid", r.Seq)
		}
	}
	res, err := k.Verify("i1", seq(spliced), &head, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || res.Problems[0].Seq != 5 || !strings.Contains(res.Problems[0].What, "does not follow the record before it") {
		t.Fatalf("problems %v, want #5 does not follow the record before it", res.Problems)
	}
}

// Fields a client chooses may hold bytes that are not UTF-8. Whatever is
// stored must be what the MAC covers: changing those bytes in the store
// must fail verification.
func TestVerifyInvalidUTF8(t *testing.T) {
	k, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	tests := []struct {
		name string
		// change alters the stored record.
		change func(r *store.AuditRecord)
	}{
		{"another invalid byte in the client_id", func(r *store.AuditRecord) { r.ClientID = "client-\xfe" }},
		{"the client_id's bytes as they came", func(r *store.AuditRecord) { r.ClientID = "client-\xff" }},
		{"another invalid byte in the request id", func(r *store.AuditRecord) { r.RequestID = "req-\xc0" }},
		{"an invalid byte in a scope", func(r *store.AuditRecord) { r.Scopes = []string{"nhn:deft/\x80"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, head := chain(t, k, 3)
			// Record 3 as a store seals it from a client's bytes.
			r := recs[2]
			r.ClientID, r.RequestID, r.Scopes = "client-\xff", "req-\xff", []string{"nhn:deft/\xff"}
			k.Seal(&r, recs[1].Seq, recs[1].MAC)
			recs[2], head.MAC = r, r.MAC
			if res, err := k.Verify("i1", seq(recs), &head, nil); err != nil || !res.OK() {
				t.Fatalf("as sealed: %v, %v", res.Problems, err)
			}
			tt.change(&recs[2])
			res, err := k.Verify("i1", seq(recs), &head, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() || res.Problems[0].Seq != 3 || !strings.Contains(res.Problems[0].What, "was changed") {
				t.Fatalf("problems %v, want #3 was changed", res.Problems)
			}
		})
	}
}

// A chain broken and then resealed: the reseal record links to the last
// intact record and says why; verify reports it as a break, apart from
// tampering, and checks everything else as before.
func TestVerifyResealedBreak(t *testing.T) {
	k, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	other, _ := DeriveKey([]byte("another key-encryption key, 32 b"))
	// resealed is a chain of 5 whose record #bad (0: none) was changed,
	// resealed by key rk after the last intact record, then one more
	// record; and its head.
	resealed := func(bad int64, rk Key) ([]store.AuditRecord, store.AuditHead) {
		recs, head := chain(t, k, 5)
		after := head
		if bad > 0 {
			recs[bad-1].ClientID = "changed"
			after = store.AuditHead{Instance: "i1", Seq: bad - 1, MAC: recs[bad-1].Prev}
		}
		r := ResealRecord("i1", recs[0].Time, after, "the head was removed")
		rk.SealAfter(&r, 6, after)
		next := recs[4]
		k.Seal(&next, r.Seq, r.MAC)
		recs = append(recs, r, next)
		return recs, store.AuditHead{Instance: "i1", Seq: next.Seq, MAC: next.MAC}
	}
	tests := []struct {
		name   string
		bad    int64
		key    Key
		change func(recs []store.AuditRecord)
		// wantBreaks, wantProblem: the breaks reported, and the first
		// problem ("" for none).
		wantBreaks  int
		wantProblem string
	}{
		{name: "head removed, resealed after the last record", key: k, wantBreaks: 1},
		{name: "a record changed, resealed after the one before", bad: 4, key: k, wantBreaks: 1},
		{name: "the first record changed, resealed after none", bad: 1, key: k, wantBreaks: 1},
		{name: "a reseal made without the key", key: other, wantProblem: "#6: was changed"},
		{name: "an intact record changed after the reseal", bad: 4, key: k, wantBreaks: 0,
			change: func(r []store.AuditRecord) { r[1].Audience = "changed" }, wantProblem: "#2: was changed"},
		{name: "the reseal's reason changed", key: k,
			change: func(r []store.AuditRecord) { r[5].Error = "nothing happened" }, wantProblem: "#6: was changed"},
		{name: "a record after the reseal changed", key: k,
			change: func(r []store.AuditRecord) { r[6].ClientID = "changed" }, wantBreaks: 1, wantProblem: "#7: was changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, head := resealed(tt.bad, tt.key)
			if tt.change != nil {
				tt.change(recs)
			}
			res, err := k.Verify("i1", seq(recs), &head, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Breaks) != tt.wantBreaks {
				t.Fatalf("breaks %+v, want %d", res.Breaks, tt.wantBreaks)
			}
			if tt.wantBreaks > 0 {
				b := res.Breaks[0]
				if b.Seq != 6 || b.Reason != "the head was removed" {
					t.Errorf("break %+v, want #6 with its reason", b)
				}
				if tt.bad > 0 && (b.After != tt.bad-1 || len(b.Problems) == 0 || b.Problems[0].Seq != tt.bad) {
					t.Errorf("break %+v, want after #%d holding the change to #%d", b, tt.bad-1, tt.bad)
				}
			}
			switch {
			case tt.wantProblem == "" && !res.OK():
				t.Fatalf("problems %v, want none", res.Problems)
			case tt.wantProblem != "" && (res.OK() || !strings.Contains(res.Problems[0].String(), tt.wantProblem)):
				t.Fatalf("problems %v, want first %q", res.Problems, tt.wantProblem)
			}
		})
	}
}

// A reseal record must link to the last intact record: one after an
// earlier record would drop intact records from the chain unseen.
func TestVerifyResealAfterTheWrongRecord(t *testing.T) {
	k, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	recs, _ := chain(t, k, 5)
	after := store.AuditHead{Instance: "i1", Seq: 2, MAC: recs[1].MAC}
	r := ResealRecord("i1", recs[0].Time, after, "cut short")
	k.SealAfter(&r, 6, after)
	recs = append(recs, r)
	res, err := k.Verify("i1", seq(recs), &store.AuditHead{Instance: "i1", Seq: 6, MAC: r.MAC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !strings.Contains(res.Problems[0].String(), "#6: resealed after #2, not after the last intact record #5") {
		t.Fatalf("problems %v", res.Problems)
	}
}

// A chain whose oldest records were removed for retention verifies when a
// checkpoint vouches for the removal, and not otherwise.
func TestVerifyPruned(t *testing.T) {
	k, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	other, _ := DeriveKey([]byte("another key-encryption key, 32 b"))
	// pruned is a chain of 6 whose records 1 to 3 were removed, with a
	// checkpoint #7 vouching for #through, sealed with ck.
	pruned := func(through int64, ck Key) ([]store.AuditRecord, store.AuditHead) {
		recs, head := chain(t, k, 6)
		cp := PruneRecord("i1", recs[0].Time, store.AuditHead{Instance: "i1", Seq: through, MAC: recs[through-1].MAC}, recs[3].Time)
		ck.Seal(&cp, head.Seq, head.MAC)
		recs = append(recs[3:], cp)
		return recs, store.AuditHead{Instance: "i1", Seq: cp.Seq, MAC: cp.MAC}
	}
	tests := []struct {
		name    string
		through int64
		key     Key
		change  func(recs []store.AuditRecord) []store.AuditRecord
		want    string
	}{
		{name: "vouched for", through: 3, key: k},
		{name: "a checkpoint for other records", through: 2, key: k, want: "#1: records before #4 are missing"},
		{name: "a checkpoint made without the key", through: 3, key: other, want: "#7: was changed"},
		{name: "one more record removed", through: 3, key: k,
			change: func(r []store.AuditRecord) []store.AuditRecord { return r[1:] }, want: "records before #5 are missing"},
		{name: "the checkpoint removed", through: 3, key: k,
			change: func(r []store.AuditRecord) []store.AuditRecord { return r[:3] }, want: "records at the end were removed"},
		{name: "the first remaining record changed", through: 3, key: k,
			change: func(r []store.AuditRecord) []store.AuditRecord { r[0].Subject = "x"; return r }, want: "#4: was changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, head := pruned(tt.through, tt.key)
			if tt.change != nil {
				recs = tt.change(recs)
			}
			res, err := k.Verify("i1", seq(recs), &head, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !res.OK() {
					t.Fatalf("problems %v", res.Problems)
				}
				return
			}
			for _, p := range res.Problems {
				if strings.Contains(p.String(), tt.want) {
					return
				}
			}
			t.Fatalf("problems %v, want %q", res.Problems, tt.want)
		})
	}
}

func TestVerifyOtherKey(t *testing.T) {
	k, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"))
	other, _ := DeriveKey([]byte("another key-encryption key, 32 b"))
	recs, head := chain(t, k, 3)
	res, err := other.Verify("i1", seq(recs), &head, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() {
		t.Fatal("a chain verified with another key")
	}
}

func TestHeadRoundTrip(t *testing.T) {
	h := store.AuditHead{Instance: "sts-1:a", Seq: 42, MAC: []byte{1, 2, 3, 250}}
	got, err := ParseHead(FormatHead(h))
	if err != nil || got.Instance != h.Instance || got.Seq != 42 || string(got.MAC) != string(h.MAC) {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "x:y", "i:0:AA", "i:1:!!"} {
		if _, err := ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}
