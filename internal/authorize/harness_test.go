package authorize_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// registry has clients that log people in, and TestIDP.
const registry = `
apis:
  - audience: nhn:deft
    name: DEFT
    scopes: [nhn:deft/api]
  - audience: test:bearer
    name: Bearer API
    scopes: [test:bearer/read]
    allow_bearer: true
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
client_systems:
  - {id: sys, name: Test EPJ, supplier: "310900028"}
clients:
  - id: web
    name: Web app
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code, refresh_token]
    scopes: [nhn:deft/api, test:bearer/read]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid]
    redirect_uris: [https://web.example/callback, http://127.0.0.1/cb]
    allow_loopback_any_port: true
    jwks: {{jwks "web" "ES256"}}
  - id: other
    name: Another web app
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code]
    scopes: [nhn:deft/api]
    identity_scopes: [openid]
    redirect_uris: [https://other.example/callback]
    jwks: {{jwks "other" "ES256"}}
  - id: plain
    name: Old web app without PAR
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code]
    scopes: [nhn:deft/api]
    identity_scopes: [openid]
    redirect_uris: [https://plain.example/callback]
    require_par: false
    jwks: {{jwks "plain" "ES256"}}
identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: TestIDP}
`

// testIDP is a stand-in for the login pages, not yet part of this build:
// it logs in whoever TestIDP's automation parameters (test_pid,
// test_security_level, test_hpr_number) name, as HelseID's TestIDP does
// without its form, and completes the login through the real seam.
type testIDP struct {
	e   *authorize.Endpoint
	now func() time.Time
}

func (l *testIDP) Start(w http.ResponseWriter, r *http.Request, req *authorize.Request) {
	if req.Prompt == "none" {
		l.e.Fail(w, r, req, authorize.CodeLoginRequired, "no one is logged in")
		return
	}
	if req.Test.PID == "" {
		l.e.Fail(w, r, req, authorize.CodeAccessDenied, "no test_pid")
		return
	}
	level := req.Test.SecurityLevel
	if level == "" {
		level = "4"
	}
	sum := sha256.Sum256([]byte(req.Test.PID))
	l.e.Complete(r.Context(), w, r, req, authorize.Authentication{
		Person: store.Login{
			Subject:       base64.StdEncoding.EncodeToString(sum[:]),
			PID:           req.Test.PID,
			SecurityLevel: level,
			HPRNumber:     req.Test.HPRNumber,
			AMR:           []string{"pwd"},
			AuthTime:      l.now(),
			IdP:           "testidp-oidc",
		},
		SessionID: "S-" + req.Test.PID,
	})
}

type harness struct {
	*servertest.Server
	t      testing.TB
	client *http.Client
}

func start(t testing.TB, settings ...string) *harness {
	login := &testIDP{}
	s := servertest.Start(t, servertest.Options{
		Registry: registry,
		Settings: "environment: test\n" + strings.Join(settings, "\n"),
		Login:    login,
	})
	login.e, login.now = s.Srv.Authorize(), s.Clock.Now
	return &harness{Server: s, t: t, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

const pid = "17056600574"

// login is a valid login's parameters: PKCE verifier and what PAR gets.
type login struct {
	client   string
	verifier string
	form     url.Values
}

func (h *harness) newLogin(client string) *login {
	verifier := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	sum := sha256.Sum256([]byte(verifier))
	redirect := map[string]string{"web": "https://web.example/callback", "other": "https://other.example/callback", "plain": "https://plain.example/callback"}[client]
	scope := "openid nhn:deft/api"
	if client == "web" {
		scope = "openid helseid://scopes/identity/pid offline_access nhn:deft/api test:bearer/read"
	}
	return &login{client: client, verifier: verifier, form: url.Values{
		"client_id":             {client},
		"response_type":         {"code"},
		"redirect_uri":          {redirect},
		"scope":                 {scope},
		"state":                 {"st-" + verifier[:8]},
		"nonce":                 {"n-" + verifier[:8]},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"acr_values":            {"idp:testidp-oidc"},
		"test_pid":              {pid},
		"resource":              {"nhn:deft"},
	}}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// assertion is a valid client assertion of client, changed by mutate.
func (h *harness) assertion(client string, mutate func(c map[string]any)) string {
	k := h.Key(h.t, client)
	now := h.Clock.Now()
	c := map[string]any{"iss": client, "sub": client, "aud": h.URL, "jti": jws.NewJTI(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix()}
	if mutate != nil {
		mutate(c)
	}
	return jwttest.JWT{Header: map[string]any{"alg": "ES256", "typ": "client-authentication+jwt", "kid": k.KeyID},
		Claims: c, Key: k.Key.(crypto.Signer)}.Sign(h.t)
}

// requestObject signs claims as client's request object.
func (h *harness) requestObject(client string, key crypto.Signer, claims map[string]any) string {
	k := h.Key(h.t, client)
	if key == nil {
		key = k.Key.(crypto.Signer)
	}
	return jwttest.JWT{Header: map[string]any{"alg": "ES256", "kid": k.KeyID}, Claims: claims, Key: key}.Sign(h.t)
}

type answer struct {
	status int
	body   map[string]any
	header http.Header
	raw    string
}

func (a answer) code() string { s, _ := a.body["error"].(string); return s }

func (h *harness) post(path string, form url.Values, proof string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) answer {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

// par pushes l's form with a fresh assertion and, with key, a proof
// (fetching the nonce first).
func (h *harness) par(l *login, key *dpop.Signer, mutate func(url.Values)) answer {
	h.t.Helper()
	form := url.Values{}
	for k, v := range l.form {
		form[k] = append([]string(nil), v...)
	}
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", h.assertion(l.client, nil))
	if mutate != nil {
		mutate(form)
	}
	proof := ""
	if key != nil {
		proof = h.proof(key, "/connect/par")
	}
	return h.post("/connect/par", form, proof)
}

func (h *harness) proof(key *dpop.Signer, path string) string {
	h.t.Helper()
	nonce := h.Srv.Keys().Nonces().Issue(h.Clock.Now())
	p, err := key.Proof(http.MethodPost, h.URL+path, dpop.ProofOptions{Nonce: nonce, Now: h.Clock.Now()})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func newDPoPKey(t testing.TB) *dpop.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authorize sends the browser to the authorization endpoint with query.
func (h *harness) authorize(query url.Values) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.URL+"/connect/authorize?"+query.Encode(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

// location is the redirect of a, parsed; it fails the test if a is not
// a redirect.
func (h *harness) location(a answer) *url.URL {
	h.t.Helper()
	if a.status != http.StatusSeeOther {
		h.t.Fatalf("status %d, want a redirect: %s", a.status, a.raw)
	}
	u, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// code runs PAR and the authorization endpoint and returns the code.
func (h *harness) code(l *login, key *dpop.Signer) string {
	h.t.Helper()
	p := h.par(l, key, nil)
	if p.status != http.StatusCreated {
		h.t.Fatalf("PAR: %d %s", p.status, p.raw)
	}
	u := h.location(h.authorize(url.Values{"client_id": {l.client}, "request_uri": {p.body["request_uri"].(string)}}))
	code := u.Query().Get("code")
	if code == "" {
		h.t.Fatalf("no code: %s", u)
	}
	return code
}

// redeem sends the code to the token endpoint.
func (h *harness) redeem(l *login, client, code string, key *dpop.Signer, mutate func(url.Values)) answer {
	h.t.Helper()
	form := url.Values{
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"code_verifier":         {l.verifier},
		"redirect_uri":          {l.form.Get("redirect_uri")},
		"client_id":             {client},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {h.assertion(client, nil)},
	}
	if mutate != nil {
		mutate(form)
	}
	proof := ""
	if key != nil {
		proof = h.proof(key, "/connect/token")
	}
	return h.post("/connect/token", form, proof)
}

func newDPoPKeyRaw(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
