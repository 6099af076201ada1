package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	m := New()
	m.Request("token", "client_credentials", "ok", 3*time.Millisecond)
	m.Request("token", "client_credentials", "invalid_client", time.Millisecond)
	m.Issued("demo-deft", "nhn:deft")
	m.Replay("proof")
	m.Rotation()
	m.Store("commit_decision", 400*time.Microsecond)
	m.Limited("address")
	m.Aggregated("token", "invalid_client")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`tillit_requests_total{code="ok",endpoint="token",grant_type="client_credentials"} 1`,
		`tillit_requests_total{code="invalid_client",endpoint="token",grant_type="client_credentials"} 1`,
		`tillit_request_duration_seconds_count{endpoint="token",grant_type="client_credentials"} 2`,
		`tillit_tokens_issued_total{audience="nhn:deft",client_id="demo-deft"} 1`,
		`tillit_replay_refusals_total{kind="proof"} 1`,
		`tillit_signing_key_rotations_total 1`,
		`tillit_store_operation_duration_seconds_count{operation="commit_decision"} 1`,
		`tillit_rate_limited_total{by="address"} 1`,
		`tillit_refusals_aggregated_total{code="invalid_client",endpoint="token"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.Request("token", "x", "ok", time.Second)
	m.Issued("a", "b")
	m.Replay("proof")
	m.Rotation()
	m.Store("x", time.Second)
	m.Limited("client")
	m.Aggregated("token", "invalid_client")
}
