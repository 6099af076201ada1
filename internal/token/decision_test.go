package token_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
	"github.com/tillit-sts/tillit/internal/token"
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

// Every token issued and every refusal once the client assertion has
// verified against a registered key is on record before the answer, and
// the chain verifies. The use_dpop_nonce round trip is not: it is the
// protocol's, not a decision about the request.
func TestAuditRecordsEveryDecision(t *testing.T) {
	h := start(t, servertest.Options{Settings: "instance: sts-test"})
	ok := h.do(call{form: deftScope})
	if ok.status != 200 {
		t.Fatalf("token: %d %v", ok.status, ok.body)
	}
	refused := h.do(call{form: func(f url.Values) { f.Set("scope", "openid") }})
	replayed := h.do(call{rawAssertion: ok.assertion, form: deftScope})
	nonce := h.do(call{form: deftScope, proof: func(hd, c map[string]any) { delete(c, "nonce") }})
	replayedProof := h.do(call{rawProof: ok.proof, form: deftScope})
	for _, r := range []result{refused, replayed, nonce, replayedProof} {
		if r.status == 200 {
			t.Fatalf("expected a refusal, got %v", r.body)
		}
	}
	if nonce.code() != "use_dpop_nonce" {
		t.Fatalf("nonce round trip: %v", nonce.body)
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
		{audit.OutcomeRefused, "invalid_dpop_proof", ""},
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

	verifyChain(t, h, "sts-test", 4)
}

// verifyChain fails unless the test server's chain of instance holds want
// records and verifies.
func verifyChain(t *testing.T, h *harness, instance string, want int64) {
	t.Helper()
	kek, err := keys.ReadKEKFile(h.Dir + "/kek")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := audit.DeriveKey(kek)
	st := h.Store.(*sqlite.Store)
	heads, _ := st.AuditHeads(context.Background())
	if len(heads) != 1 || heads[0].Instance != instance {
		t.Fatalf("chain heads %+v, want one of %s", heads, instance)
	}
	res, err := key.Verify(instance, st.AuditChain(context.Background(), instance), &heads[0], nil)
	if err != nil || !res.OK() || res.Records != want {
		t.Fatalf("chain: %v %+v, want %d records intact", err, res, want)
	}
}

// Introspection and revocation are decisions too: each answer and each
// refusal is on record, and the record names the token only where the
// caller may learn about it. A replayed assertion revokes nothing.
func TestAuditIntrospectionAndRevocation(t *testing.T) {
	h := start(t, servertest.Options{Settings: "instance: sts-test"})
	sfmToken := h.token(call{client: "sfm-client", dpopKey: newP256(t)})
	sfmClaims := claims(t, sfmToken)
	key := newP256(t)
	rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	kept := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	before := len(auditRecords(t, h))

	revoked := h.post(token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam(rt)})
	calls := []struct {
		name string
		r    result
		want store.AuditRecord
	}{
		{"revocation", revoked,
			store.AuditRecord{Endpoint: "revocation", ClientID: "refresh-client", Outcome: audit.OutcomeRevoked}},
		{"introspection, active", h.post(token.IntrospectionPath, endpointCall{client: "sfm-actor", form: tokenParam(sfmToken)}),
			store.AuditRecord{Endpoint: "introspection", ClientID: "sfm-actor", Outcome: audit.OutcomeActive,
				Audience: "e-helse:sfm.api", TokenID: sfmClaims["jti"].(string), OrgParent: sfmClaims[orgNrParentClaim].(string)}},
		{"introspection, inactive", h.post(token.IntrospectionPath, endpointCall{client: "sfm-actor", form: tokenParam("hello")}),
			store.AuditRecord{Endpoint: "introspection", ClientID: "sfm-actor", Outcome: audit.OutcomeInactive}},
		{"introspection, refused", h.post(token.IntrospectionPath, endpointCall{client: "deft-client", form: tokenParam(sfmToken)}),
			store.AuditRecord{Endpoint: "introspection", ClientID: "deft-client", Outcome: audit.OutcomeRefused, Error: "unauthorized_client"}},
		{"revocation, unknown token", h.post(token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam("no-such-token")}),
			store.AuditRecord{Endpoint: "revocation", ClientID: "refresh-client", Outcome: audit.OutcomeUnknownToken}},
		{"revocation, replayed assertion", h.post(token.RevocationPath, endpointCall{rawAssertion: revoked.assertion, form: tokenParam(kept)}),
			store.AuditRecord{Endpoint: "revocation", ClientID: "refresh-client", Outcome: audit.OutcomeRefused, Error: "invalid_client"}},
	}
	recs := auditRecords(t, h)[before:]
	if len(recs) != len(calls) {
		t.Fatalf("%d audit records for %d calls: %+v", len(recs), len(calls), recs)
	}
	for i, c := range calls {
		got := recs[i]
		if got.RequestID == "" || got.RequestID != c.r.header.Get("X-Request-Id") {
			t.Errorf("%s: record of request %q, answer of %q", c.name, got.RequestID, c.r.header.Get("X-Request-Id"))
		}
		if c.want.Outcome == audit.OutcomeRevoked {
			if got.TokenID == "" {
				t.Errorf("%s: the record does not name the family", c.name)
			}
			c.want.TokenID = got.TokenID
		}
		got.Instance, got.Seq, got.Time, got.RequestID, got.Prev, got.MAC, got.Scopes = "", 0, time.Time{}, "", nil, nil, nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: record\n %+v\nwant\n %+v", c.name, got, c.want)
		}
	}
	if len(recs[1].Scopes) != 1 || recs[1].Scopes[0] != "e-helse:sfm.api/sfm.api" {
		t.Errorf("introspection record scopes %v", recs[1].Scopes)
	}
	verifyChain(t, h, "sts-test", int64(before+len(calls)))

	// The replayed assertion revoked nothing.
	if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(kept, withResource("nhn:deft"))}); r.status != 200 {
		t.Fatalf("refresh token named with a replayed assertion: %d %v", r.status, r.body)
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

// TestRateLimitsOtherEndpoints: introspection and revocation authenticate
// clients too, and share the token endpoint's budgets: per address before
// anything is verified, per client once authenticated.
func TestRateLimitsOtherEndpoints(t *testing.T) {
	const (
		perAddress = "rate_limit: {per_address: 1, address_burst: 1}"
		perClient  = "rate_limit: {per_client: 1, client_burst: 1}"
	)
	introspect := func(h *harness) result {
		return h.post(token.IntrospectionPath, endpointCall{client: "deft-client", form: tokenParam("x")})
	}
	revoke := func(h *harness) result {
		return h.post(token.RevocationPath, endpointCall{client: "deft-client", form: tokenParam("x")})
	}
	issue := func(h *harness) result { return h.do(call{form: deftScope}) }
	tests := []struct {
		name          string
		settings      string
		first, second func(*harness) result
		wantDesc      string
	}{
		{"introspection per address", perAddress, introspect, introspect, "this address"},
		{"revocation per address", perAddress, revoke, revoke, "this address"},
		{"introspection per client", perClient, introspect, introspect, "this client"},
		{"revocation per client", perClient, revoke, revoke, "this client"},
		{"token then introspection, one client budget", perClient, issue, introspect, "this client"},
		{"token then revocation, one address budget", perAddress, issue, revoke, "this address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, servertest.Options{Settings: tt.settings})
			if r := tt.first(h); r.status == 429 {
				t.Fatalf("first: %d %v", r.status, r.body)
			}
			r := tt.second(h)
			if r.status != 429 || r.code() != "temporarily_unavailable" || r.header.Get("Retry-After") != "1" || !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("second: %d %v Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
			}
			h.Clock.Advance(time.Second)
			if r := tt.second(h); r.status == 429 {
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
	h.post(token.IntrospectionPath, endpointCall{client: "deft-client", form: tokenParam("x")})
	revoked := h.post(token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam("x")})
	h.post(token.RevocationPath, endpointCall{rawAssertion: revoked.assertion, form: tokenParam("x")})
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
		`tillit_requests_total{code="unauthorized_client",endpoint="introspection",grant_type=""} 1`,
		`tillit_requests_total{code="ok",endpoint="revocation",grant_type=""} 1`,
		`tillit_requests_total{code="invalid_client",endpoint="revocation",grant_type=""} 1`,
		`tillit_replay_refusals_total{kind="assertion"} 1`,
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
