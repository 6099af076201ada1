package token_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// writeRefusals runs the server's aggregate job once, at the fake clock's
// time.
func writeRefusals(t *testing.T, h *harness) {
	t.Helper()
	if err := h.Srv.WriteRefusals(t.Context()); err != nil {
		t.Fatalf("WriteRefusals: %v", err)
	}
}

// aggregates are the aggregate records in the test server's audit log,
// with their summaries.
func aggregates(t *testing.T, h *harness) ([]store.AuditRecord, []audit.RefusalSummary) {
	t.Helper()
	var recs []store.AuditRecord
	var sums []audit.RefusalSummary
	for _, r := range auditRecords(t, h) {
		if r.Outcome != audit.OutcomeRefusedAggregate {
			continue
		}
		var s audit.RefusalSummary
		if r.Endpoint != audit.EndpointAggregate || json.Unmarshal([]byte(r.Details), &s) != nil {
			t.Fatalf("aggregate record %+v", r)
		}
		recs, sums = append(recs, r), append(sums, s)
	}
	return recs, sums
}

func count(s audit.RefusalSummary, endpoint, code string, status int) int64 {
	for _, c := range s.ByError {
		if c.Endpoint == endpoint && c.Error == code && c.Status == status {
			return c.Count
		}
	}
	return 0
}

// A flood of requests refused before the client assertion verified
// against a registered key writes no record per request: the server
// counts them, and writes what it counted as one aggregate record at most
// once a minute.
func TestEarlyRefusalsAggregated(t *testing.T) {
	h := start(t, servertest.Options{Settings: "instance: sts-test"})
	stranger := newP256(t)
	kid := h.Key(t, "deft-client").KeyID
	noClientID := func(f url.Values) { f.Del("client_id") }
	garbage := []struct {
		name       string
		c          func() call
		wantStatus int
		wantCode   string
	}{
		{"not a form", func() call { return call{body: "a=%zz"} }, 400, "invalid_request"},
		{"wrong method", func() call { return call{method: http.MethodGet} }, 405, "invalid_request"},
		{"oversize", func() call { return call{body: "a=" + strings.Repeat("b", token.DefaultMaxBody)} }, 413, "invalid_request"},
		{"no assertion", func() call { return call{form: func(f url.Values) { f.Del("client_assertion") }} }, 401, "invalid_client"},
		{"not a JWT", func() call { return call{rawAssertion: "garbage"} }, 401, "invalid_client"},
		{"unknown client", func() call {
			return call{rawAssertion: forgeAssertion(t, h, stranger, "no-such-client", kid), form: noClientID}
		}, 401, "invalid_client"},
		{"bad signature", func() call { return call{rawAssertion: forgeAssertion(t, h, stranger, "deft-client", kid)} }, 401, "invalid_client"},
	}
	const rounds = 10
	flood := func() {
		for _, g := range garbage {
			for range rounds {
				if r := h.do(g.c()); r.status != g.wantStatus || r.code() != g.wantCode {
					t.Fatalf("%s: %d %v, want %d %s", g.name, r.status, r.body, g.wantStatus, g.wantCode)
				}
			}
		}
		for _, path := range []string{token.IntrospectionPath, token.RevocationPath} {
			for range rounds {
				if r := h.post(path, endpointCall{rawAssertion: "garbage", form: tokenParam("x")}); r.status != 401 {
					t.Fatalf("%s: %d %v", path, r.status, r.body)
				}
			}
		}
	}
	flood()
	if recs := auditRecords(t, h); len(recs) != 0 {
		t.Fatalf("%d audit records for unauthenticated garbage: %+v", len(recs), recs[0])
	}
	// Nothing until a minute has passed since the server started.
	writeRefusals(t, h)
	h.Clock.Advance(59 * time.Second)
	writeRefusals(t, h)
	if recs := auditRecords(t, h); len(recs) != 0 {
		t.Fatalf("an aggregate within the first minute: %+v", recs)
	}
	h.Clock.Advance(time.Second)
	writeRefusals(t, h)
	recs, sums := aggregates(t, h)
	if len(recs) != 1 || len(auditRecords(t, h)) != 1 {
		t.Fatalf("%d aggregates, %d records after a minute; want one of each", len(recs), len(auditRecords(t, h)))
	}
	s := sums[0]
	total := int64(rounds * (len(garbage) + 2))
	if recs[0].Instance != "sts-test" || s.Total != total {
		t.Fatalf("aggregate %+v: %+v, want %d refusals", recs[0], s, total)
	}
	for _, w := range []struct {
		endpoint, code string
		status         int
		want           int64
	}{
		{"token", "invalid_request", 400, rounds},
		{"token", "invalid_request", 405, rounds},
		{"token", "invalid_request", 413, rounds},
		{"token", "invalid_client", 401, 4 * rounds},
		{"introspection", "invalid_client", 401, rounds},
		{"revocation", "invalid_client", 401, rounds},
	} {
		if got := count(s, w.endpoint, w.code, w.status); got != w.want {
			t.Errorf("%s %s %d: %d, want %d (%+v)", w.endpoint, w.code, w.status, got, w.want, s.ByError)
		}
	}
	if len(s.TopSources) != 1 || s.TopSources[0].Address != "127.0.0.1" || s.TopSources[0].Count != total {
		t.Errorf("top sources %+v", s.TopSources)
	}

	// The flood goes on: still one record a minute, not one a request.
	flood()
	h.Clock.Advance(30 * time.Second)
	writeRefusals(t, h)
	if n := len(auditRecords(t, h)); n != 1 {
		t.Fatalf("%d records half a minute after the aggregate", n)
	}
	h.Clock.Advance(30 * time.Second)
	writeRefusals(t, h)
	writeRefusals(t, h)
	if recs, sums := aggregates(t, h); len(recs) != 2 || len(auditRecords(t, h)) != 2 || sums[1].Total != total {
		t.Fatalf("%d aggregates (%+v) after two minutes, want 2", len(recs), sums)
	}
	verifyChain(t, h, "sts-test", 2)

	// The metrics count them by endpoint and code.
	body := metricsBody(t, h)
	for _, want := range []string{
		fmt.Sprintf(`tillit_refusals_aggregated_total{code="invalid_client",endpoint="token"} %d`, 2*4*rounds),
		fmt.Sprintf(`tillit_refusals_aggregated_total{code="invalid_request",endpoint="token"} %d`, 2*3*rounds),
		fmt.Sprintf(`tillit_refusals_aggregated_total{code="invalid_client",endpoint="introspection"} %d`, 2*rounds),
		fmt.Sprintf(`tillit_refusals_aggregated_total{code="invalid_client",endpoint="revocation"} %d`, 2*rounds),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func metricsBody(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// 429s write no record, whether the address was limited before anything
// was verified or the client once its assertion verified.
func TestRateLimitedNotAudited(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		next     call
	}{
		{"per address", "rate_limit: {per_address: 1, address_burst: 1}", call{rawAssertion: "garbage"}},
		{"per client", "rate_limit: {per_client: 1, client_burst: 1}", call{form: deftScope}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, servertest.Options{Settings: "instance: sts-test\n" + tt.settings})
			if r := h.do(call{form: deftScope}); r.status != 200 {
				t.Fatalf("first: %d %v", r.status, r.body)
			}
			const flood = 30
			for range flood {
				if r := h.do(tt.next); r.status != 429 {
					t.Fatalf("%d %v, want 429", r.status, r.body)
				}
			}
			if recs := auditRecords(t, h); len(recs) != 1 || recs[0].Outcome != audit.OutcomeIssued {
				t.Fatalf("%d records after a flood of 429s, want the one token's", len(recs))
			}
			h.Clock.Advance(time.Minute)
			writeRefusals(t, h)
			_, sums := aggregates(t, h)
			if len(sums) != 1 || count(sums[0], "token", "temporarily_unavailable", 429) != flood {
				t.Fatalf("aggregates %+v, want one counting %d 429s", sums, flood)
			}
			verifyChain(t, h, "sts-test", 2)
		})
	}
}

// However many source addresses the refusals come from, the aggregate
// names ten, the busiest first.
func TestAggregateSourcesBounded(t *testing.T) {
	h := start(t, servertest.Options{Settings: "instance: sts-test\nrate_limit: {trusted_proxies: [127.0.0.1]}"})
	from := func(addr string) call {
		return call{rawAssertion: "garbage", header: func(hd http.Header) { hd.Set("X-Forwarded-For", addr) }}
	}
	const distinct, busy = 300, 40
	for i := range distinct {
		h.do(from(fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
	}
	for range busy {
		h.do(from("192.0.2.66"))
	}
	h.Clock.Advance(time.Minute)
	writeRefusals(t, h)
	_, sums := aggregates(t, h)
	if len(sums) != 1 {
		t.Fatalf("%d aggregates", len(sums))
	}
	s := sums[0]
	if s.Total != distinct+busy || len(s.TopSources) != audit.TopSources {
		t.Fatalf("%d refusals, %d sources: %+v", s.Total, len(s.TopSources), s)
	}
	if top := s.TopSources[0]; top.Address != "192.0.2.66" || top.Count < busy {
		t.Errorf("busiest source %+v, want 192.0.2.66 with %d", top, busy)
	}
}

// A refusal with a record of its own is logged at info; one without, at
// debug, so that a caller without a key cannot fill the log either.
func TestAggregatedRefusalsLoggedAtDebug(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	h := start(t, servertest.Options{Log: lockedWriter{&mu, &logs}})
	h.do(call{rawAssertion: "garbage"})
	h.do(call{form: func(f url.Values) { f.Set("scope", "openid") }})
	mu.Lock()
	defer mu.Unlock()
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l struct{ Level, Msg, Error string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "token request refused" {
			levels[l.Error] = l.Level
		}
	}
	if levels["invalid_client"] != "DEBUG" || levels["invalid_scope"] != "INFO" {
		t.Fatalf("refusals logged at %v, want invalid_client at DEBUG and invalid_scope at INFO", levels)
	}
}
