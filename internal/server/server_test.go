package server_test

import (
	"bytes"
	"context"
	"crypto"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	_ "modernc.org/sqlite"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// serve runs s.Srv.Serve, with its background jobs, on a loopback port,
// and returns its base URL, the cancel that stops it and Serve's answer.
func serve(t *testing.T, s *servertest.Server) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Srv.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), cancel, done
}

func getJSON(t *testing.T, url string, v any) http.Header {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp.Header
}

// withTestIdP is the default registry with the TestIDP beside the
// upstream provider, for a test environment.
var withTestIdP = strings.Replace(servertest.DefaultRegistry,
	"  - {name: upstream-oidc, type: oidc, display_name: An upstream provider}\n",
	"  - {name: upstream-oidc, type: oidc, display_name: An upstream provider}\n"+
		"  - {name: testidp-oidc, type: testidp, display_name: Test login}\n"+
		"  - {name: testidp-off, type: testidp, display_name: Switched off, enabled: false}\n", 1)

func TestDiscovery(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Registry: withTestIdP, Settings: "environment: test\nclient_assertion: {allow_rs_algorithms: false}"})
	var m map[string]any
	getJSON(t, s.URL+"/.well-known/openid-configuration", &m)
	want := map[string]any{
		"issuer":           s.URL,
		"jwks_uri":         s.URL + "/.well-known/openid-configuration/jwks",
		"token_endpoint":   s.URL + "/connect/token",
		"expired_jwks_uri": s.URL + "/connect/expiredjwks",
		// HelseID's paths (profile §1.2).
		"introspection_endpoint": s.URL + "/connect/introspect",
		"revocation_endpoint":    s.URL + "/connect/revocation",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	list := func(k string) []string {
		var out []string
		for _, v := range m[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := list("token_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"private_key_jwt"}) {
		t.Errorf("auth methods %v", got)
	}
	if got := list("grant_types_supported"); !slices.Equal(got, []string{"authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"}) {
		t.Errorf("grant types %v", got)
	}
	// What discovery says is what is enforced: RS* switched off here.
	if got := list("token_endpoint_auth_signing_alg_values_supported"); slices.Contains(got, "RS256") || !slices.Contains(got, "PS256") {
		t.Errorf("assertion algs %v", got)
	}
	for _, s := range []string{"nhn:deft/api", "e-helse:sfm.api/sfm.api", "test:bearer/read"} {
		if !slices.Contains(list("scopes_supported"), s) {
			t.Errorf("scope %s not advertised", s)
		}
	}
	for _, k := range []string{"introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		if got := list(k); !slices.Equal(got, []string{"private_key_jwt"}) {
			t.Errorf("%s %v", k, got)
		}
	}
	// The front channel, from the settings the endpoints enforce.
	front := map[string]any{
		"authorization_endpoint":                         s.URL + "/connect/authorize",
		"pushed_authorization_request_endpoint":          s.URL + "/connect/par",
		"require_pushed_authorization_requests":          false,
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range front {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for k, want := range map[string][]string{
		"response_types_supported":         {"code"},
		"code_challenge_methods_supported": {"S256"},
		"subject_types_supported":          {"public"},
		"available_idps":                   {"testidp-oidc"},
	} {
		if got := list(k); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if got := list("request_object_signing_alg_values_supported"); slices.Contains(got, "RS256") || slices.Contains(got, "HS256") || !slices.Contains(got, "PS256") {
		t.Errorf("request object algs %v", got)
	}
	// OpenID Connect: userinfo, ID tokens signed by the published keys,
	// the person's scopes and claims; end-session only once it is served.
	if m["userinfo_endpoint"] != s.URL+"/connect/userinfo" {
		t.Errorf("userinfo_endpoint = %v", m["userinfo_endpoint"])
	}
	if got := list("id_token_signing_alg_values_supported"); !slices.Equal(got, []string{"RS256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v, want [RS256]", got)
	}
	for _, sc := range []string{"openid", "profile", "offline_access", "helseid://scopes/identity/pid", "helseid://scopes/hpr/hpr_number"} {
		if !slices.Contains(list("scopes_supported"), sc) {
			t.Errorf("scope %s not advertised", sc)
		}
	}
	for _, c := range []string{"sub", "name", "sid", "helseid://claims/identity/pid", "helseid://claims/hpr/hpr_number", "helseid://claims/client/claims/orgnr_parent"} {
		if !slices.Contains(list("claims_supported"), c) {
			t.Errorf("claim %s not advertised", c)
		}
	}
	// End-session is served with the login pages.
	if m["end_session_endpoint"] != s.URL+"/connect/endsession" {
		t.Errorf("end_session_endpoint = %v", m["end_session_endpoint"])
	} else if resp, err := http.Get(s.URL + "/connect/endsession"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("end_session_endpoint: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var oauthMeta map[string]any
	getJSON(t, s.URL+"/.well-known/oauth-authorization-server", &oauthMeta)
	if oauthMeta["token_endpoint"] != m["token_endpoint"] {
		t.Error("RFC 8414 metadata differs from OIDC discovery")
	}
}

// TestDiscoveryWithoutLogin: without an identity provider no client can
// get a code, so authorization_code is not advertised.
func TestDiscoveryWithoutLogin(t *testing.T) {
	reg := strings.Replace(servertest.DefaultRegistry, "identity_providers:\n  - {name: upstream-oidc, type: oidc, display_name: An upstream provider}\n", "", 1)
	reg = strings.Replace(reg, "    grant_types: [authorization_code]\n    redirect_uris: [https://code-only.example/callback]\n    identity_scopes: [openid]\n", "", 1)
	s := servertest.Start(t, servertest.Options{Registry: reg})
	var m struct {
		Grants []string `json:"grant_types_supported"`
		IdPs   []string `json:"available_idps"`
		Scopes []string `json:"scopes_supported"`
		Claims []string `json:"claims_supported"`
	}
	getJSON(t, s.URL+"/.well-known/openid-configuration", &m)
	if slices.Contains(m.Grants, "authorization_code") || len(m.IdPs) != 0 || m.IdPs == nil {
		t.Errorf("grants %v, idps %v", m.Grants, m.IdPs)
	}
	if slices.Contains(m.Scopes, "openid") || slices.Contains(m.Claims, "helseid://claims/identity/pid") {
		t.Errorf("the person's scopes or claims advertised without login: %v %v", m.Scopes, m.Claims)
	}
}

// TestDiscoveryAvailableIdPs: available_idps lists only the providers a
// person can log in at here, and authorization_code is advertised only
// when there is one.
func TestDiscoveryAvailableIdPs(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		registry string
		// storeTestIdP writes an enabled TestIDP into the registry
		// behind the configuration's back, as a store that once served
		// a test environment may hold.
		storeTestIdP bool
		wantIdPs     []string
		wantCode     bool
	}{
		{name: "test environment: the enabled TestIDP", settings: "environment: test", registry: withTestIdP,
			wantIdPs: []string{"testidp-oidc"}, wantCode: true},
		{name: "production: an upstream provider is not usable in this build", settings: "environment: production",
			wantIdPs: []string{}},
		{name: "production: a TestIDP in the store is never offered", settings: "environment: production", storeTestIdP: true,
			wantIdPs: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Settings: tt.settings, Registry: tt.registry})
			if tt.storeTestIdP {
				ctx := context.Background()
				idp := store.IdentityProvider{Name: "testidp-oidc", Type: store.IdentityProviderTestIdP, Status: store.StatusActive}
				if _, err := store.Create(ctx, s.Store, store.IdentityProviderKind, idp); err != nil {
					t.Fatal(err)
				}
				snap, err := s.Srv.Registry().Refresh(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := snap.IdentityProvider("testidp-oidc"); !ok || p.Status != store.StatusActive {
					t.Fatal("the TestIDP did not reach the registry")
				}
			}
			var m struct {
				Grants []string `json:"grant_types_supported"`
				IdPs   []string `json:"available_idps"`
			}
			getJSON(t, s.URL+"/.well-known/openid-configuration", &m)
			if !slices.Equal(m.IdPs, tt.wantIdPs) || m.IdPs == nil {
				t.Errorf("available_idps = %#v, want %#v", m.IdPs, tt.wantIdPs)
			}
			if got := slices.Contains(m.Grants, "authorization_code"); got != tt.wantCode {
				t.Errorf("authorization_code advertised: %v, want %v (grants %v)", got, tt.wantCode, m.Grants)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var set jose.JSONWebKeySet
	getJSON(t, s.URL+"/.well-known/openid-configuration/jwks", &set)
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	k := set.Keys[0]
	if !k.IsPublic() || k.Algorithm != "RS256" || k.Use != "sig" || k.KeyID == "" {
		t.Fatalf("key %+v", k)
	}
	var expired jose.JSONWebKeySet
	getJSON(t, s.URL+"/connect/expiredjwks", &expired)
	if len(expired.Keys) != 0 {
		t.Fatalf("expired keys on a new server: %d", len(expired.Keys))
	}
	// After a --now rotation and the token lifetime, the old key moves.
	if _, err := s.Srv.Keys().Rotate(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	s.Clock.Advance(2 * time.Hour)
	getJSON(t, s.URL+"/connect/expiredjwks", &expired)
	if len(expired.Keys) != 1 || expired.Keys[0].KeyID != k.KeyID {
		t.Fatalf("expired_jwks %v, want the first key", expired.Keys)
	}
}

func TestRequestIDAndHealth(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Header.Get("X-Request-Id")) != 24 {
		t.Fatalf("status %d id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	req, _ := http.NewRequest("GET", s.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "from-the-proxy-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got == "from-the-proxy-1" || len(got) != 24 {
		t.Fatalf("the server answers with its own request id, not the client's: got %q", got)
	}
	req.Header.Set("X-Request-Id", "evil\" injected=1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if strings.Contains(resp.Header.Get("X-Request-Id"), "evil") {
		t.Fatal("a request id with odd characters is kept")
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	resp, err := http.Post(s.URL+"/.well-known/openid-configuration/jwks", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST to the JWKS: %d", resp.StatusCode)
	}
	resp, err = http.Get(s.URL + "/connect/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
}

// Serve stops on cancellation and lets a request in flight finish.
func TestGracefulShutdown(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	base, cancel, done := serve(t, s)
	// Hold a request open by sending its body slowly.
	pr, pw := io.Pipe()
	respc := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/connect/token", pr)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			respc <- nil
			return
		}
		respc <- resp
	}()
	pw.Write([]byte(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	// The held request's connection is made once its first bytes are
	// read. The server accepts connections in the order they were made,
	// so once a later one has been answered, the held one is being served.
	resp, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	time.Sleep(100 * time.Millisecond)
	pw.Close()
	resp = <-respc
	if resp == nil {
		t.Fatal("request in flight was cut off")
	}
	resp.Body.Close()
	if resp.StatusCode != 401 { // no client authentication: answered, not dropped
		t.Fatalf("request in flight got %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

// refusedForm is the body of a token request that gets an audit record of
// its own: deft-client authenticates with a valid assertion and asks for a
// scope it may not have (invalid_scope). A request refused before the
// assertion verifies would only be counted in the aggregate.
func refusedForm(t *testing.T, s *servertest.Server) string {
	t.Helper()
	key := s.Key(t, "deft-client")
	now := s.Clock.Now()
	assertion := jwttest.JWT{
		Header: map[string]any{"alg": key.Algorithm, "kid": key.KeyID, "typ": "client-authentication+jwt"},
		Claims: map[string]any{"iss": "deft-client", "sub": "deft-client", "aud": s.URL, "jti": jws.NewJTI(),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix()},
		Key: key.Key.(crypto.Signer),
	}.Sign(t)
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
		"scope":                 {"openid"},
	}.Encode()
}

// The audit record of a request keeps the X-Request-Id its client sent
// apart from the server's request ID, so that a client cannot make its
// records pass for another request's.
func TestAuditRecordKeepsClientRequestID(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	req, _ := http.NewRequest("POST", s.URL+"/connect/token", strings.NewReader(refusedForm(t, s)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", "0123456789abcdef01234567")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	recs, err := s.Store.AuditRecords(t.Context(), store.AuditFilter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("AuditRecords = %d, %v; want the refusal", len(recs), err)
	}
	r := recs[0]
	if r.RequestID != resp.Header.Get("X-Request-Id") || r.RequestID == "0123456789abcdef01234567" {
		t.Errorf("request_id %q, want the server's %q", r.RequestID, resp.Header.Get("X-Request-Id"))
	}
	if r.ClientRequestID != "0123456789abcdef01234567" {
		t.Errorf("client_request_id %q, want the client's", r.ClientRequestID)
	}
}

// A chain whose head was removed: token requests get a clear 503 and
// readiness is red, instead of a 500 for every request while /readyz
// says ready; once resealed, the server serves again.
func TestBrokenAuditChain(t *testing.T) {
	var logs bytes.Buffer
	s := servertest.Start(t, servertest.Options{Log: &logs})
	post := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(s.URL+"/connect/token", "application/x-www-form-urlencoded", strings.NewReader(refusedForm(t, s)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	ready := func() (int, string) {
		t.Helper()
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(); code != 400 {
		t.Fatalf("first request: %d", code)
	}
	db, err := sql.Open("sqlite", filepath.Join(s.Dir, "tillit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM audit_head"); err != nil {
		t.Fatal(err)
	}
	code, body := post()
	if code != 503 || body["error"] != "temporarily_unavailable" || body["error_description"] == "" {
		t.Fatalf("token request on a broken chain: %d %v, want 503 temporarily_unavailable", code, body)
	}
	if code, text := ready(); code != 503 || !strings.Contains(text, "audit chain broken") {
		t.Fatalf("/readyz on a broken chain: %d %q", code, text)
	}
	if !strings.Contains(logs.String(), "tillit audit reseal") {
		t.Errorf("the log does not say what is wrong and what to do:\n%s", logs.String())
	}
	instances, err := s.Store.AuditInstances(t.Context())
	if err != nil || len(instances) != 1 {
		t.Fatalf("AuditInstances = %v, %v", instances, err)
	}
	kek, err := keys.ReadKEKFile(filepath.Join(s.Dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.DeriveKey(kek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Reseal(t.Context(), key, s.Store, instances[0], s.Clock.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	if code, text := ready(); code != 200 {
		t.Fatalf("/readyz after the reseal: %d %q", code, text)
	}
	if code, body := post(); code != 400 {
		t.Fatalf("token request after the reseal: %d %v", code, body)
	}
}

// loggedHeads are the heads of the "audit head" log lines, in order.
func loggedHeads(t *testing.T, logs string) []string {
	t.Helper()
	var heads []string
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var l struct{ Msg, Head string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Msg == "audit head" {
			heads = append(heads, l.Head)
		}
	}
	return heads
}

// The chain head is logged every head_log_every_records records, as the
// record that reaches the count is committed, and when the server stops,
// so that a log cut short at its end is found by verify --head (only
// records after the last logged head could go unnoticed).
func TestAuditHeadLogged(t *testing.T) {
	var logs syncBuffer
	s := servertest.Start(t, servertest.Options{Log: &logs, Settings: "audit:\n  head_log_every_records: 2\n"})
	base, stop, done := serve(t, s)
	post := func() {
		t.Helper()
		resp, err := http.Post(base+"/connect/token", "application/x-www-form-urlencoded", strings.NewReader(refusedForm(t, s)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post()
	if h := loggedHeads(t, logs.String()); len(h) != 0 {
		t.Fatalf("heads logged after one record: %v", h)
	}
	post()
	h := loggedHeads(t, logs.String())
	if len(h) != 1 || !strings.Contains(h[0], ":2:") {
		t.Fatalf("heads logged after two records: %v, want #2", h)
	}
	post()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs, err := s.Store.AuditRecords(t.Context(), store.AuditFilter{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("AuditRecords: %d, %v", len(recs), err)
	}
	want := audit.FormatHead(store.AuditHead{Instance: recs[2].Instance, Seq: 3, MAC: recs[2].MAC})
	if h := loggedHeads(t, logs.String()); len(h) != 2 || h[1] != want {
		t.Fatalf("heads logged at the end: %v, want the last %s", h, want)
	}
}

// syncBuffer is a bytes.Buffer for a log written by several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// With audit.retention set, the server removes the records older than it,
// keeping the newest, and the chain still verifies.
func TestAuditRetention(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Settings: "audit:\n  retention: 24h\n"})
	for range 3 {
		resp, err := http.Post(s.URL+"/connect/token", "application/x-www-form-urlencoded", strings.NewReader(refusedForm(t, s)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n, err := s.Srv.PruneAudit(t.Context()); err != nil || n != 0 {
		t.Fatalf("PruneAudit before the retention: %d, %v", n, err)
	}
	s.Clock.Advance(25 * time.Hour)
	if n, err := s.Srv.PruneAudit(t.Context()); err != nil || n != 2 {
		t.Fatalf("PruneAudit after the retention: %d, %v; want 2 (not the newest)", n, err)
	}
	kek, err := keys.ReadKEKFile(filepath.Join(s.Dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := audit.DeriveKey(kek)
	heads, err := s.Store.AuditHeads(t.Context())
	if err != nil || len(heads) != 1 {
		t.Fatalf("AuditHeads = %v, %v", heads, err)
	}
	res, err := key.Verify(heads[0].Instance, s.Store.AuditChain(t.Context(), heads[0].Instance), &heads[0], nil)
	if err != nil || !res.OK() || res.Records != 2 {
		t.Fatalf("verify after pruning: %d records, %v, %v", res.Records, res.Problems, err)
	}
}

// TestDiscoveryIDTokenAlgorithm: ID tokens are RS256 unless a client asks
// otherwise, whatever signs the access tokens, so discovery lists RS256
// first and then the algorithms login clients ask for, each with a key of
// its own published in the JWKS.
func TestDiscoveryIDTokenAlgorithm(t *testing.T) {
	const loginClient = "    grant_types: [authorization_code]\n"
	tests := []struct {
		name     string
		access   string
		asks     string // id_token_signed_response_alg of code-only-client; "" for none
		wantAlgs []string
	}{
		{name: "ES256 access tokens, nothing asked", access: "ES256", wantAlgs: []string{"RS256"}},
		{name: "RS256 access tokens, nothing asked", access: "RS256", wantAlgs: []string{"RS256"}},
		{name: "ES256 access tokens, ES256 asked", access: "ES256", asks: "ES256", wantAlgs: []string{"RS256", "ES256"}},
		{name: "RS256 access tokens, PS384 asked", access: "RS256", asks: "PS384", wantAlgs: []string{"RS256", "PS384"}},
		{name: "PS256 access tokens, RS256 asked", access: "PS256", asks: "RS256", wantAlgs: []string{"RS256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := servertest.DefaultRegistry
			if tt.asks != "" {
				if !strings.Contains(reg, loginClient) {
					t.Fatal("the default registry has no login client")
				}
				reg = strings.Replace(reg, loginClient, loginClient+"    id_token_signed_response_alg: "+tt.asks+"\n", 1)
			}
			s := servertest.Start(t, servertest.Options{Algorithm: tt.access, Registry: reg})
			var m struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			getJSON(t, s.URL+"/.well-known/openid-configuration", &m)
			if !slices.Equal(m.Algs, tt.wantAlgs) {
				t.Errorf("id_token_signing_alg_values_supported = %v, want %v", m.Algs, tt.wantAlgs)
			}
			var set struct {
				Keys []struct {
					Alg string `json:"alg"`
				} `json:"keys"`
			}
			getJSON(t, s.URL+"/.well-known/openid-configuration/jwks", &set)
			var published []string
			for _, k := range set.Keys {
				published = append(published, k.Alg)
			}
			for _, alg := range append(slices.Clone(tt.wantAlgs), tt.access) {
				if !slices.Contains(published, alg) {
					t.Errorf("no %s key in the JWKS %v", alg, published)
				}
			}
		})
	}
}
