package audit

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func summary(t *testing.T, rec store.AuditRecord) RefusalSummary {
	t.Helper()
	var s RefusalSummary
	if err := json.Unmarshal([]byte(rec.Details), &s); err != nil {
		t.Fatalf("details %q: %v", rec.Details, err)
	}
	return s
}

// At most one aggregate a minute, none without refusals, and the counts
// start again after each.
func TestRefusalsOncePerMinute(t *testing.T) {
	r := NewRefusals("sts-a", t0)
	if _, ok := r.Take(t0.Add(2*time.Minute), false); ok {
		t.Fatal("an aggregate of no refusals")
	}
	for range 5 {
		r.Add("token", "invalid_client", 401, "192.0.2.1")
	}
	r.Add("introspection", "invalid_request", 400, "192.0.2.2")
	r.Add("token", "temporarily_unavailable", 429, "192.0.2.1")
	early := NewRefusals("sts-a", t0)
	early.Add("token", "invalid_client", 401, "192.0.2.1")
	if _, ok := early.Take(t0.Add(59*time.Second), false); ok {
		t.Fatal("an aggregate within the first minute")
	}
	rec, ok := r.Take(t0.Add(3*time.Minute), false)
	if !ok {
		t.Fatal("no aggregate with refusals counted, a minute after the start")
	}
	if rec.Instance != "sts-a" || rec.Endpoint != EndpointAggregate || rec.Outcome != OutcomeRefusedAggregate ||
		!rec.Time.Equal(t0.Add(3*time.Minute)) || rec.ClientID != "" || rec.RequestID != "" {
		t.Fatalf("record %+v", rec)
	}
	s := summary(t, rec)
	if s.Total != 7 || !s.Until.Equal(t0.Add(3*time.Minute)) || !s.Since.Equal(t0) {
		t.Fatalf("summary %+v", s)
	}
	want := []RefusalCount{
		{Endpoint: "token", Error: "invalid_client", Status: 401, Count: 5},
		{Endpoint: "introspection", Error: "invalid_request", Status: 400, Count: 1},
		{Endpoint: "token", Error: "temporarily_unavailable", Status: 429, Count: 1},
	}
	if fmt.Sprint(s.ByError) != fmt.Sprint(want) {
		t.Errorf("by error %+v, want %+v", s.ByError, want)
	}
	wantSources := []SourceCount{{Address: "192.0.2.1", Count: 6}, {Address: "192.0.2.2", Count: 1}}
	if fmt.Sprint(s.TopSources) != fmt.Sprint(wantSources) {
		t.Errorf("top sources %+v, want %+v", s.TopSources, wantSources)
	}

	// Within the next minute nothing more is written, however many
	// refusals come; then the next record counts only the new ones.
	r.Add("revocation", "invalid_client", 401, "192.0.2.3")
	for _, d := range []time.Duration{0, time.Second, 59 * time.Second} {
		if _, ok := r.Take(t0.Add(3*time.Minute+d), false); ok {
			t.Fatalf("a second aggregate %v after the first", d)
		}
	}
	rec, ok = r.Take(t0.Add(4*time.Minute), false)
	if !ok {
		t.Fatal("no second aggregate a minute later")
	}
	if s := summary(t, rec); s.Total != 1 || len(s.TopSources) != 1 || s.TopSources[0].Address != "192.0.2.3" ||
		!s.Since.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("second summary %+v", s)
	}
	// When the server stops, what is counted is written at once.
	r.Add("token", "invalid_request", 400, "192.0.2.4")
	if _, ok := r.Take(t0.Add(4*time.Minute+time.Second), true); !ok {
		t.Fatal("the final take wrote nothing")
	}
}

// Whatever addresses an attacker rotates through, the aggregate keeps a
// fixed number of slots and reports ten; a source that sends a large share
// of the refusals is among them with a count no lower than its own.
func TestRefusalsTopSourcesBounded(t *testing.T) {
	r := NewRefusals("sts-a", t0)
	const distinct = 100_000
	for i := range distinct {
		r.Add("token", "invalid_request", 400, fmt.Sprintf("2001:db8::%x", i))
		if i%10 == 0 {
			r.Add("token", "invalid_client", 401, "198.51.100.7")
		}
		if i%50 == 0 {
			r.Add("token", "invalid_client", 401, "198.51.100.8")
		}
	}
	if n := r.sources.Len(); n > sourceSlots {
		t.Fatalf("%d source slots in use, want at most %d", n, sourceSlots)
	}
	rec, ok := r.Take(t0.Add(time.Minute), false)
	if !ok {
		t.Fatal("no aggregate")
	}
	if len(rec.Details) > 4<<10 {
		t.Errorf("details of %d bytes", len(rec.Details))
	}
	s := summary(t, rec)
	if s.Total != distinct+distinct/10+distinct/50 {
		t.Errorf("total %d", s.Total)
	}
	if len(s.TopSources) != TopSources {
		t.Fatalf("%d top sources, want %d", len(s.TopSources), TopSources)
	}
	if top := s.TopSources[0]; top.Address != "198.51.100.7" || top.Count < distinct/10 || top.Count-top.MaxOvercount > distinct/10 {
		t.Errorf("first source %+v, want 198.51.100.7 with %d", top, distinct/10)
	}
	if second := s.TopSources[1]; second.Address != "198.51.100.8" || second.Count < distinct/50 {
		t.Errorf("second source %+v, want 198.51.100.8 with %d", second, distinct/50)
	}
	for i := 1; i < len(s.TopSources); i++ {
		if s.TopSources[i].Count > s.TopSources[i-1].Count {
			t.Errorf("top sources out of order: %+v", s.TopSources)
		}
	}
	// The slots are reused, not kept growing, after a take.
	if n := r.sources.Len(); n != 0 {
		t.Errorf("%d source slots in use after the take", n)
	}
}

// An address longer than any IP address is cut, so that a slot's size is
// bounded too.
func TestRefusalsLongAddress(t *testing.T) {
	r := NewRefusals("sts-a", t0)
	long := string(make([]byte, 10_000))
	r.Add("token", "invalid_request", 400, long)
	rec, _ := r.Take(t0.Add(time.Minute), false)
	if s := summary(t, rec); len(s.TopSources) != 1 || len(s.TopSources[0].Address) > maxAddress {
		t.Fatalf("top sources %+v", s.TopSources)
	}
}

// A record without Details has the MAC it had before the field existed, so
// that chains written then still verify.
func TestMACWithoutDetailsUnchanged(t *testing.T) {
	k := Key([]byte("0123456789abcdef0123456789abcdef"))
	rec := store.AuditRecord{
		Instance: "i1", Seq: 7, Time: t0, RequestID: "req", Endpoint: "token", GrantType: "client_credentials",
		ClientID: "c1", Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"}, TokenID: "T1", Outcome: "issued",
		Prev: []byte("prev"),
	}
	const want = "38765103178de5cb47804402539d0db3302af441eb5f9c15f40219900a1caafd"
	if got := hex.EncodeToString(k.MAC(&rec)); got != want {
		t.Fatalf("MAC %s, want %s", got, want)
	}
}

// The MAC covers Details: an aggregate's counts cannot be changed unseen.
func TestMACCoversDetails(t *testing.T) {
	k := Key([]byte("0123456789abcdef0123456789abcdef"))
	rec := store.AuditRecord{Instance: "i1", Seq: 1, Time: t0, Endpoint: EndpointAggregate,
		Outcome: OutcomeRefusedAggregate, Details: `{"total":3}`, Prev: []byte{}}
	changed := rec
	changed.Details = `{"total":2}`
	if string(k.MAC(&rec)) == string(k.MAC(&changed)) {
		t.Fatal("the MAC does not cover Details")
	}
}
