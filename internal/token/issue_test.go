package token_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/servertest"
)

// verify checks an issued token the way an API would, with plain go-jose
// against the JWKS the server publishes, and returns its claims.
func verify(t *testing.T, h *harness, token string) (jose.Header, map[string]any) {
	t.Helper()
	resp, err := http.Get(h.URL + "/.well-known/openid-configuration/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.Signatures[0].Protected
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is in the JWKS %d times", hdr.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("token does not verify against the published key: %v", err)
	}
	if typ := hdr.ExtraHeaders["typ"]; typ != "at+jwt" {
		t.Fatalf("typ %v", typ)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return hdr, c
}

func thumbprint(t testing.TB, key crypto.Signer) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: key.Public()}
	b, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(stdB64(b)), "=")
}

func TestIssueDPoPToken(t *testing.T) {
	h := start(t)
	key := newP256(t)
	r := h.do(call{dpopKey: key, form: deftScope})
	if r.status != 200 {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	if r.body["token_type"] != "DPoP" || r.body["expires_in"] != float64(3600) || r.body["scope"] != "nhn:deft/api" {
		t.Fatalf("response %v", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("headers %v", r.header)
	}
	hdr, c := verify(t, h, r.body["access_token"].(string))
	if hdr.Algorithm != "RS256" {
		t.Fatalf("alg %s, want RS256 by default", hdr.Algorithm)
	}
	now := h.Clock.Now().Unix()
	want := map[string]any{
		"iss": h.URL, "aud": "nhn:deft", "client_id": "deft-client",
		"iat": float64(now), "nbf": float64(now), "exp": float64(now + 3600),
		"client_amr":                                    "private_key_jwt",
		"helseid://claims/client/amr":                   "ec_private_key",
		"helseid://claims/client/client_name":           "DEFT client",
		"helseid://claims/client/client_tenancy":        "single-tenant",
		"helseid://claims/client/claims/orgnr_parent":   servertest.Customer,
		"helseid://claims/client/claims/orgnr_supplier": servertest.Supplier,
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	if s, ok := c["scope"].([]any); !ok || len(s) != 1 || s[0] != "nhn:deft/api" {
		t.Errorf("scope %v, want a JSON array", c["scope"])
	}
	if jti, _ := c["jti"].(string); len(jti) != 32 || strings.ToUpper(jti) != jti {
		t.Errorf("jti %q, want 32 upper-case hex digits", jti)
	}
	cnf, _ := c["cnf"].(map[string]any)
	if cnf["jkt"] != thumbprint(t, key) {
		t.Errorf("cnf.jkt %v is not the RFC 7638 thumbprint of the proof key", cnf["jkt"])
	}
	for _, absent := range []string{"sub", "helseid://claims/client/claims/orgnr_child"} {
		if _, ok := c[absent]; ok {
			t.Errorf("machine token carries %s", absent)
		}
	}
}

func TestIssueClaimsPerAPIAndClient(t *testing.T) {
	h := start(t)
	tests := []struct {
		name   string
		call   call
		want   map[string]any
		absent []string
	}{
		{"SFM gets sfm-id, not orgnr_supplier",
			call{client: "sfm-client"},
			map[string]any{"aud": "e-helse:sfm.api", "e-helse:sfm.api/client/claims/sfm-id": servertest.SFMID},
			[]string{"helseid://claims/client/claims/orgnr_supplier"}},
		{"SFM journal id from assertion_details",
			call{client: "sfm-client", assertion: details(map[string]any{"type": "nhn:sfm:journal-id", "value": map[string]any{"journal_id": "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}})},
			map[string]any{"nhn:sfm:journal-id": "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}, nil},
		{"child organisation from assertion_details",
			call{assertion: details(childDetail(servertest.Child)), form: deftScope},
			map[string]any{"helseid://claims/client/claims/orgnr_child": servertest.Child, "helseid://claims/client/claims/orgnr_parent": servertest.Customer}, nil},
		{"child organisation in an array with a journal id",
			call{assertion: details([]any{childDetail(servertest.Child), map[string]any{"type": "nhn:tillitsrammeverk:parameters", "practitioner": map[string]any{}}}), form: deftScope},
			map[string]any{"helseid://claims/client/claims/orgnr_child": servertest.Child}, nil},
		{"child organisation by the legacy authorization_details",
			call{assertion: func(h, c map[string]any) { c["authorization_details"] = childDetail(servertest.Child) }, form: deftScope},
			map[string]any{"helseid://claims/client/claims/orgnr_child": servertest.Child}, nil},
		{"own parent with a child, ISO 6523 form",
			call{assertion: details(multiDetail("NO:ORGNR:" + servertest.Customer + ":" + servertest.Child)), form: deftScope},
			map[string]any{"helseid://claims/client/claims/orgnr_child": servertest.Child}, nil},
		{"RSA client key",
			call{client: "rsa-client"},
			map[string]any{"helseid://claims/client/amr": "rsa_private_key", "client_id": "rsa-client"}, nil},
		{"resource alone picks the client's scopes of that API",
			call{form: func(f url.Values) { f.Set("resource", "test:bearer") }},
			map[string]any{"aud": "test:bearer", "exp": float64(h.Clock.Now().Add(5 * time.Minute).Unix())}, nil},
		{"resource and scope",
			call{form: func(f url.Values) { f.Set("resource", "nhn:deft"); f.Set("scope", "nhn:deft/api") }},
			map[string]any{"aud": "nhn:deft"}, nil},
		{"typ JWT and a numeric-string iat without kid",
			call{assertion: func(hd, c map[string]any) {
				hd["typ"] = "JWT"
				delete(hd, "kid")
				c["iat"] = strconv.FormatInt(h.Clock.Now().Unix(), 10)
			}, form: deftScope},
			map[string]any{"aud": "nhn:deft"}, nil},
		{"aud is the token endpoint",
			call{assertion: func(h2, c map[string]any) { c["aud"] = h.URL + "/connect/token" }, form: deftScope},
			map[string]any{"aud": "nhn:deft"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.do(tt.call)
			if r.status != 200 {
				t.Fatalf("status %d: %v", r.status, r.body)
			}
			_, c := verify(t, h, r.body["access_token"].(string))
			for k, v := range tt.want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := c[k]; ok {
					t.Errorf("token carries %s", k)
				}
			}
		})
	}
}

func TestBearerWhereAllowed(t *testing.T) {
	h := start(t)
	r := h.do(call{client: "bearer-client", noDPoP: true})
	if r.status != 200 || r.body["token_type"] != "Bearer" {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	_, c := verify(t, h, r.body["access_token"].(string))
	if _, ok := c["cnf"]; ok {
		t.Fatal("Bearer token carries cnf")
	}
	if r.body["scope"] != "test:bearer/read test:bearer/write" || r.body["expires_in"] != float64(300) {
		t.Fatalf("response %v", r.body)
	}
}

func TestReplay(t *testing.T) {
	h := start(t)
	first := h.do(call{form: deftScope})
	if first.status != 200 {
		t.Fatalf("first: %d %v", first.status, first.body)
	}
	t.Run("assertion jti", func(t *testing.T) {
		h.t = t
		r := h.do(call{rawAssertion: first.assertion, form: deftScope})
		if r.status != 401 || r.code() != "invalid_client" || !strings.Contains(r.description(), "already used") {
			t.Fatalf("got %d %v", r.status, r.body)
		}
	})
	t.Run("proof jti", func(t *testing.T) {
		h.t = t
		r := h.do(call{rawProof: first.proof, form: deftScope})
		if r.status != 400 || r.code() != "invalid_dpop_proof" || !strings.Contains(r.description(), "already used") {
			t.Fatalf("got %d %v", r.status, r.body)
		}
	})
	t.Run("after the replay window the proof is too old anyway", func(t *testing.T) {
		h.t = t
		h.Clock.Advance(61 * time.Second)
		r := h.do(call{rawProof: first.proof, form: deftScope})
		if r.code() != "invalid_dpop_proof" && r.code() != "use_dpop_nonce" {
			t.Fatalf("got %d %v", r.status, r.body)
		}
	})
}

// A refused request spends nothing (docs/design.md, what a refusal spends): the same assertion and
// proof succeed once the mistake is fixed.
func TestRefusalSpendsNothing(t *testing.T) {
	h := start(t)
	key := newP256(t)
	assertion := h.assertion("deft-client", nil)

	// The use_dpop_nonce round trip, as every HelseID client does it.
	noNonce := h.proof(key, func(hd, c map[string]any) { delete(c, "nonce") })
	r := h.do(call{rawAssertion: assertion, rawProof: noNonce, form: deftScope})
	if r.code() != "use_dpop_nonce" {
		t.Fatalf("first call: %d %v", r.status, r.body)
	}
	nonce := r.header.Get("DPoP-Nonce")

	// A refusal by the grant after both checks passed.
	proof := h.proof(key, func(hd, c map[string]any) { c["nonce"] = nonce })
	r = h.do(call{rawAssertion: assertion, rawProof: proof, form: func(f url.Values) { f.Set("scope", "e-helse:sfm.api/sfm.api") }})
	if r.code() != "invalid_scope" {
		t.Fatalf("second call: %d %v", r.status, r.body)
	}
	r = h.do(call{rawAssertion: assertion, rawProof: proof, noDPoP: false, form: deftScope})
	if r.status != 200 {
		t.Fatalf("retry with the same assertion and proof: %d %v", r.status, r.body)
	}
}

// Concurrent use of one assertion: exactly one token.
func TestConcurrentReplay(t *testing.T) {
	h := start(t)
	assertion := h.assertion("deft-client", nil)
	const n = 20
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = h.proof(newP256(t), nil)
	}
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			form := url.Values{
				"grant_type": {"client_credentials"}, "scope": {"nhn:deft/api"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {assertion},
			}
			req, _ := http.NewRequest("POST", h.tokenURL(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("DPoP", proofs[i])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	h.checkSettled(t)
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case 200:
			ok++
		case 401:
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d tokens for one assertion, want 1", ok)
	}
}

// No token, assertion or proof is ever logged whole.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	h := start(t, servertest.Options{Log: lockedWriter{&mu, &logs}, Settings: "log: {level: debug}"})
	var sent []string
	for _, c := range []call{
		{form: deftScope},
		{form: deftScope, proof: func(hd, c map[string]any) { delete(c, "nonce") }},
		{form: deftScope, assertion: func(hd, c map[string]any) { c["aud"] = "x" }},
		{form: func(f url.Values) { f.Set("scope", "openid") }},
	} {
		r := h.do(c)
		sent = append(sent, r.assertion, r.proof)
		if tok, ok := r.body["access_token"].(string); ok {
			sent = append(sent, tok)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "token issued") || !strings.Contains(logs.String(), "token request refused") {
		t.Fatalf("expected log lines missing:\n%s", logs.String())
	}
	for _, s := range sent {
		sig := s[strings.LastIndex(s, ".")+1:]
		if strings.Contains(logs.String(), sig) {
			t.Fatalf("a token, assertion or proof is in the logs:\n%s", logs.String())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The use_dpop_nonce round trip is what every DPoP client does first: it
// is logged at debug, and never as a refusal.
func TestNonceRoundTripLoggedAtDebug(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	h := start(t, servertest.Options{Log: lockedWriter{&mu, &logs}})
	r := h.do(call{form: deftScope, proof: func(hd, c map[string]any) { delete(c, "nonce") }})
	if r.body["error"] != "use_dpop_nonce" {
		t.Fatalf("answer %v, want use_dpop_nonce", r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["error"] != "use_dpop_nonce" {
			continue
		}
		found = true
		if e["level"] != "DEBUG" || e["msg"] != "token request answered with a DPoP nonce" {
			t.Errorf("nonce round trip logged as %v %q, want DEBUG", e["level"], e["msg"])
		}
	}
	if !found {
		t.Fatalf("no log line for the round trip:\n%s", logs.String())
	}
}
