package client_test

// End-to-end tests against the real token service (internal/servertest runs
// the real server wiring with a SQLite store; only its clock is fake). The
// import of internal/ is in test code only: the package itself stays free
// of it (deps_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// exchange is one request the client sent and what came back.
type exchange struct {
	Method, Path string
	Form         url.Values
	DPoP         []string
	Status       int
	Nonce        string // the response's DPoP-Nonce
}

// String keeps failure messages short: method, path, status, and whether a
// proof went and a nonce came back.
func (x exchange) String() string {
	return fmt.Sprintf("%s %s (%d proofs) → %d (nonce %t)", x.Method, x.Path, len(x.DPoP), x.Status, x.Nonce != "")
}

// recorder passes every request to the real transport and notes it: it
// observes the traffic, it does not answer anything itself.
type recorder struct {
	mu  sync.Mutex
	log []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchange{Method: req.Method, Path: req.URL.Path, DPoP: req.Header.Values("DPoP")}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(b))
		x.Form, _ = url.ParseQuery(string(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	x.Status, x.Nonce = resp.StatusCode, resp.Header.Get("DPoP-Nonce")
	r.mu.Lock()
	r.log = append(r.log, x)
	r.mu.Unlock()
	return resp, nil
}

// take returns the exchanges since the last call.
func (r *recorder) take() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.log
	r.log = nil
	return l
}

type e2e struct {
	srv *servertest.Server
	rec *recorder
}

func startE2E(t *testing.T) *e2e {
	t.Helper()
	return &e2e{srv: servertest.Start(t, servertest.Options{}), rec: &recorder{}}
}

// client makes a client for one of the registry's clients, on the server's
// clock, sending through the recorder.
func (e *e2e) client(t *testing.T, clientID string, mod func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{
		Issuer:     e.srv.URL,
		ClientID:   clientID,
		Key:        e.srv.Key(t, clientID),
		HTTPClient: &http.Client{Transport: e.rec},
		Now:        e.srv.Clock.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accessClaims verifies an access token with plain go-jose against the
// server's published JWKS and returns its claims.
func (e *e2e) accessClaims(t *testing.T, c *client.Client, token string) map[string]any {
	t.Helper()
	md, err := c.Metadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(md.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("access token typ %v", typ)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys with kid %q", len(keys), tok.Headers[0].KeyID)
	}
	var std jwt.Claims
	claims := map[string]any{}
	if err := tok.Claims(keys[0].Key, &std, &claims); err != nil {
		t.Fatalf("access token signature: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: e.srv.URL, Time: e.srv.Clock.Now()}, 0); err != nil {
		t.Fatalf("access token claims: %v", err)
	}
	return claims
}

func assertionJTI(t *testing.T, x exchange) string {
	t.Helper()
	tok, err := jwt.ParseSigned(x.Form.Get("client_assertion"), jws.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// proofNonce reads the nonce of the one DPoP proof x carried; the proof is
// verified on the server, here only its content matters.
func proofNonce(t *testing.T, x exchange) string {
	t.Helper()
	if len(x.DPoP) != 1 {
		t.Fatalf("%d DPoP headers", len(x.DPoP))
	}
	obj, err := jose.ParseSignedCompact(x.DPoP[0], jws.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(obj.UnsafePayloadWithoutVerification(), &c); err != nil {
		t.Fatal(err)
	}
	return c.Nonce
}

// TestE2ENonceRoundTrip follows HelseID's DPoP dance against the real
// endpoint: the first request is refused with use_dpop_nonce, the retry with
// a new assertion and a proof carrying the nonce gets the token; the next
// request uses the remembered nonce and needs one round trip; a nonce gone
// stale costs one round trip more.
func TestE2ENonceRoundTrip(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "deft-client", nil)
	ctx := context.Background()
	req := client.TokenRequest{Scopes: []string{"nhn:deft/api"}}

	tok, err := c.Token(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	log := e.rec.take()
	if len(log) != 3 {
		t.Fatalf("%d requests, want discovery, refused, retried: %+v", len(log), log)
	}
	discovery, first, retry := log[0], log[1], log[2]
	if discovery.Method != http.MethodGet || discovery.Path != "/.well-known/openid-configuration" {
		t.Fatalf("first request %s %s", discovery.Method, discovery.Path)
	}
	if first.Method != http.MethodPost || first.Path != "/connect/token" || first.Status != http.StatusBadRequest || first.Nonce == "" {
		t.Fatalf("first token request: %s %s → %d nonce %q", first.Method, first.Path, first.Status, first.Nonce)
	}
	if proofNonce(t, first) != "" {
		t.Fatal("the first proof carried a nonce nobody gave")
	}
	if retry.Status != http.StatusOK || proofNonce(t, retry) != first.Nonce {
		t.Fatalf("retry → %d with nonce %q, want 200 with %q", retry.Status, proofNonce(t, retry), first.Nonce)
	}
	if assertionJTI(t, first) == assertionJTI(t, retry) || first.DPoP[0] == retry.DPoP[0] {
		t.Fatal("the retry reused the assertion or the proof")
	}

	if tok.TokenType != "DPoP" || tok.Scope != "nhn:deft/api" || tok.ExpiresIn <= 0 {
		t.Fatalf("token response %+v", tok)
	}
	if want := e.srv.Clock.Now().Add(time.Duration(tok.ExpiresIn) * time.Second); !tok.Expiry.Equal(want) {
		t.Fatalf("Expiry %v, want %v", tok.Expiry, want)
	}
	claims := e.accessClaims(t, c, tok.AccessToken)
	if claims["aud"] != "nhn:deft" || claims["client_id"] != "deft-client" {
		t.Fatalf("aud %v client_id %v", claims["aud"], claims["client_id"])
	}
	cnf, _ := claims["cnf"].(map[string]any)
	if cnf["jkt"] != c.DPoPThumbprint() {
		t.Fatalf("cnf %v, want jkt %s", claims["cnf"], c.DPoPThumbprint())
	}

	// The server handed out a nonce with the token; the next request uses it.
	if _, err := c.Token(ctx, req); err != nil {
		t.Fatal(err)
	}
	log = e.rec.take()
	if len(log) != 1 || log[0].Status != http.StatusOK || proofNonce(t, log[0]) == "" {
		t.Fatalf("second token: %+v, want one request with a nonce", log)
	}

	// Nonces live one to two slots (60 s by default); three minutes on, the
	// remembered one is stale and costs one round trip.
	e.srv.Clock.Advance(3 * time.Minute)
	if _, err := c.Token(ctx, req); err != nil {
		t.Fatal(err)
	}
	log = e.rec.take()
	if len(log) != 2 || log[0].Status != http.StatusBadRequest || log[1].Status != http.StatusOK {
		t.Fatalf("after a stale nonce: %+v, want a refusal and a success", log)
	}
	if proofNonce(t, log[0]) == "" || proofNonce(t, log[1]) != log[0].Nonce {
		t.Fatal("the stale nonce was not sent first, or the fresh one not after it")
	}
}

func TestE2EBearer(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "bearer-client", nil)
	tok, err := c.Token(context.Background(), client.TokenRequest{Scopes: []string{"test:bearer/read"}, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	log := e.rec.take()
	if len(log) != 2 || len(log[1].DPoP) != 0 {
		t.Fatalf("want discovery and one token request without DPoP: %+v", log)
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") {
		t.Fatalf("token_type %q", tok.TokenType)
	}
	if claims := e.accessClaims(t, c, tok.AccessToken); claims["cnf"] != nil {
		t.Fatalf("Bearer token carries cnf %v", claims["cnf"])
	}
}

func TestE2ESeparateDPoPKey(t *testing.T) {
	e := startE2E(t)
	dk, err := keyfile.Generate(jose.PS256, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(t, "rsa-client", func(cfg *client.Config) { cfg.DPoPKey = dk })
	tok, err := c.Token(context.Background(), client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		t.Fatal(err)
	}
	cnf, _ := e.accessClaims(t, c, tok.AccessToken)["cnf"].(map[string]any)
	if cnf["jkt"] != dk.KeyID || dk.KeyID == e.srv.Key(t, "rsa-client").KeyID {
		t.Fatalf("cnf %v, want the DPoP key %s", cnf, dk.KeyID)
	}
}

func TestE2EAssertionDetails(t *testing.T) {
	e := startE2E(t)
	must := func(d helseid.Detail, err error) helseid.Detail {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name       string
		clientID   string
		scope      string
		details    []helseid.Detail
		wantClaims map[string]string
	}{
		{
			name: "single-tenant child", clientID: "deft-client", scope: "nhn:deft/api",
			details: []helseid.Detail{must(helseid.NewChildOrganization(servertest.Child))},
			wantClaims: map[string]string{
				helseid.ClaimOrgNrParent: servertest.Customer,
				helseid.ClaimOrgNrChild:  servertest.Child,
			},
		},
		{
			name: "SFM journal id", clientID: "sfm-client", scope: "e-helse:sfm.api/sfm.api",
			details:    []helseid.Detail{must(helseid.NewSFMJournalID(servertest.SFMID))},
			wantClaims: map[string]string{helseid.ClaimSFMJournalID: servertest.SFMID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t, tt.clientID, nil)
			tok, err := c.Token(context.Background(), client.TokenRequest{Scopes: []string{tt.scope}, AssertionDetails: tt.details})
			if err != nil {
				t.Fatal(err)
			}
			claims := e.accessClaims(t, c, tok.AccessToken)
			for k, v := range tt.wantClaims {
				if claims[k] != v {
					t.Errorf("%s = %v, want %s", k, claims[k], v)
				}
			}
		})
	}
}

// TestE2EErrors checks that refusals come back as *client.Error with the
// server's code and status, after the nonce round trip where there is one.
func TestE2EErrors(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	otherChild, err := helseid.NewChildOrganization(servertest.OtherChild)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		clientID   string
		mod        func(*client.Config)
		req        client.TokenRequest
		wantCode   string
		wantStatus int
		wantDesc   string // start of error_description
	}{
		{name: "scope not allowed", clientID: "deft-client", req: client.TokenRequest{Scopes: []string{"e-helse:sfm.api/sfm.api"}},
			wantCode: "invalid_scope", wantStatus: 400},
		{name: "child not on the client's list", clientID: "deft-client",
			req:      client.TokenRequest{Scopes: []string{"nhn:deft/api"}, AssertionDetails: []helseid.Detail{otherChild}},
			wantCode: "invalid_request", wantStatus: 400, wantDesc: "HID-1002"},
		{name: "wrong key", clientID: "deft-client", mod: func(c *client.Config) { c.Key = stranger },
			req: client.TokenRequest{Scopes: []string{"nhn:deft/api"}}, wantCode: "invalid_client", wantStatus: 401},
		{name: "Bearer for an API that requires DPoP", clientID: "deft-client",
			req:      client.TokenRequest{Scopes: []string{"nhn:deft/api"}, Bearer: true},
			wantCode: "invalid_dpop_proof", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t, tt.clientID, tt.mod)
			tok, err := c.Token(ctx, tt.req)
			var oe *client.Error
			if !errors.As(err, &oe) {
				t.Fatalf("got %v, %v; want a *client.Error", tok, err)
			}
			if oe.Code != tt.wantCode || oe.StatusCode != tt.wantStatus || !strings.HasPrefix(oe.Description, tt.wantDesc) {
				t.Fatalf("got %q %d %q, want %q %d %q…", oe.Code, oe.StatusCode, oe.Description, tt.wantCode, tt.wantStatus, tt.wantDesc)
			}
		})
	}
}

// TestE2EConcurrent shares one client between goroutines, as the package
// says one may: every request gets its own token.
func TestE2EConcurrent(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "deft-client", nil)
	const n = 8
	var wg sync.WaitGroup
	tokens := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Token(context.Background(), client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
			if err == nil {
				tokens[i] = tok.AccessToken
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if seen[tokens[i]] {
			t.Fatal("two requests got the same token")
		}
		seen[tokens[i]] = true
	}
}
