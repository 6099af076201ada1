package token_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// auditRecords reads the audit log of the test server.
func auditRecords(t *testing.T, h *harness) []store.AuditRecord {
	t.Helper()
	recs, err := h.Store.(*sqlite.Store).AuditRecords(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Every decision is on record before the answer, and the chain verifies.
func TestAuditRecordsEveryDecision(t *testing.T) {
	h := start(t, servertest.Options{Settings: "instance: sts-test"})
	ok := h.do(call{form: deftScope})
	if ok.status != 200 {
		t.Fatalf("token: %d %v", ok.status, ok.body)
	}
	refused := h.do(call{form: func(f url.Values) { f.Set("scope", "openid") }})
	replayed := h.do(call{rawAssertion: ok.assertion, form: deftScope})
	nonce := h.do(call{form: deftScope, proof: func(hd, c map[string]any) { delete(c, "nonce") }})
	for _, r := range []result{refused, replayed, nonce} {
		if r.status == 200 {
			t.Fatalf("expected a refusal, got %v", r.body)
		}
	}

	recs := auditRecords(t, h)
	if len(recs) != 4 {
		t.Fatalf("%d audit records, want 4: %+v", len(recs), recs)
	}
	jti := claims(t, ok.body["access_token"].(string))["jti"]
	want := []struct{ outcome, code, tokenID string }{
		{audit.OutcomeIssued, "", jti.(string)},
		{audit.OutcomeRefused, "invalid_scope", ""},
		{audit.OutcomeRefused, "invalid_client", ""},
		{audit.OutcomeRefused, "use_dpop_nonce", ""},
	}
	for i, w := range want {
		r := recs[i]
		if r.Outcome != w.outcome || r.Error != w.code || r.TokenID != w.tokenID || r.Instance != "sts-test" || r.Seq != int64(i+1) {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
		}
		if r.ClientID != "deft-client" || r.GrantType != "client_credentials" || r.RequestID == "" {
			t.Errorf("record %d lacks who and what: %+v", i, r)
		}
	}
	first := recs[0]
	if first.Audience != "nhn:deft" || first.OrgParent != servertest.Customer || first.OrgSupplier != servertest.Supplier ||
		len(first.Scopes) != 1 || first.Scopes[0] != "nhn:deft/api" {
		t.Errorf("issued record: %+v", first)
	}

	kek, err := keys.ReadKEKFile(h.Dir + "/kek")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := audit.DeriveKey(kek)
	st := h.Store.(*sqlite.Store)
	heads, _ := st.AuditHeads(context.Background())
	res, err := key.Verify("sts-test", st.AuditChain(context.Background(), "sts-test"), &heads[0], nil)
	if err != nil || !res.OK() {
		t.Fatalf("chain: %v %+v", err, res)
	}
}

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		second   call
		wantDesc string
	}{
		{"per address", "rate_limit: {per_address: 1, address_burst: 1}", call{client: "sfm-client"}, "this address"},
		{"per client", "rate_limit: {per_client: 1, client_burst: 1}", call{form: deftScope}, "this client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, servertest.Options{Settings: tt.settings})
			if r := h.do(call{form: deftScope}); r.status != 200 {
				t.Fatalf("first: %d %v", r.status, r.body)
			}
			r := h.do(tt.second)
			if r.status != 429 || r.code() != "temporarily_unavailable" || r.header.Get("Retry-After") != "1" || !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("second: %d %v Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
			}
			if tt.name == "per client" {
				// Another client is not limited by this one's budget.
				if r := h.do(call{client: "sfm-client"}); r.status != 200 {
					t.Fatalf("another client: %d %v", r.status, r.body)
				}
			}
			h.Clock.Advance(time.Second)
			if r := h.do(tt.second); r.status != 200 {
				t.Fatalf("after a second: %d %v", r.status, r.body)
			}
		})
	}
}

func TestMetricsAndReadiness(t *testing.T) {
	h := start(t)
	h.do(call{form: deftScope})
	h.do(call{form: func(f url.Values) { f.Set("scope", "openid") }})
	first := h.do(call{form: deftScope})
	h.do(call{rawProof: first.proof, form: deftScope})
	get := func(path string) (int, string) {
		resp, err := http.Get(h.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/metrics")
	for _, want := range []string{
		`tillit_requests_total{code="ok",endpoint="token",grant_type="client_credentials"} 2`,
		`tillit_requests_total{code="invalid_scope",endpoint="token",grant_type="client_credentials"} 1`,
		`tillit_requests_total{code="invalid_dpop_proof",endpoint="token",grant_type="client_credentials"} 1`,
		`tillit_tokens_issued_total{audience="nhn:deft",client_id="deft-client"} 2`,
		`tillit_replay_refusals_total{kind="proof"} 1`,
	} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if status, body := get("/readyz"); status != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", status, body)
	}
	h.Store.Close()
	if status, _ := get("/readyz"); status != 503 {
		t.Fatalf("/readyz with the store closed: %d", status)
	}
	// With the store gone a refusal cannot be recorded: the client gets a
	// bare server_error, not an answer without its audit record.
	r := h.do(call{form: func(f url.Values) { f.Set("scope", "openid") }})
	if r.status != 500 || r.code() != "server_error" {
		t.Fatalf("refusal with no audit log: %d %v", r.status, r.body)
	}
}
