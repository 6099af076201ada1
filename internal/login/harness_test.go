package login_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// pid is a person of the register, with names and an HPR entry; otherPID
// is a person the registers do not know.
const (
	pid      = "17056600574"
	otherPID = "13116900216"
	hpr      = "565501872"
)

// testRegistry has two clients that log people in, two TestIDPs (so that
// the person chooses), a person and an HPR entry as the dev register has
// them (a doctor with a speciality). For the path after the login it has
// SFM, whose own client may exchange the web client's tokens for
// Reseptformidleren, and Reseptformidleren's own client. %s adds
// post-logout redirect URIs to the web client.
const testRegistry = `
apis:
  - audience: nhn:deft
    name: DEFT
    scopes: [nhn:deft/api]
  - audience: e-helse:sfm.api
    name: SFM
    scopes: [e-helse:sfm.api/sfm.api]
    owners: [sfm]
  - audience: e-helse:reseptformidleren
    name: Reseptformidleren
    scopes: [e-helse:reseptformidleren/rf]
    owners: [rf]
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
  - {number: "310900109", name: SFM}
client_systems:
  - {id: sys, name: Test EPJ, supplier: "310900028"}
  - {id: sfm-sys, name: SFM, supplier: "310900109"}
clients:
  - id: web
    name: Web app
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code, refresh_token]
    scopes: [nhn:deft/api, e-helse:sfm.api/sfm.api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid,
      helseid://scopes/identity/security_level, helseid://scopes/hpr/hpr_number]
    redirect_uris: [https://web.example/callback, http://127.0.0.1/callback]
    allow_loopback_any_port: true
    post_logout_redirect_uris: [https://web.example/signout-callback-oidc%s]
    exchange_actors: [sfm]
    jwks: {{jwks "web" "ES256"}}
  - id: other
    name: Another web app
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code]
    scopes: [nhn:deft/api]
    identity_scopes: [openid]
    redirect_uris: [https://other.example/callback]
    post_logout_redirect_uris: [https://other.example/signout-callback-oidc]
    jwks: {{jwks "other" "ES256"}}
  - id: sfm
    name: SFM's own client
    system: sfm-sys
    organisation: "310900109"
    grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [e-helse:reseptformidleren/rf]
    jwks: {{jwks "sfm" "ES256"}}
  - id: rf
    name: Reseptformidleren's own client
    system: sfm-sys
    organisation: "310900109"
    scopes: [nhn:deft/api]
    jwks: {{jwks "rf" "ES256"}}
identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: TestIDP}
  - {name: testidpnew-oidc, type: testidp, display_name: TestIDP ny}
persons:
  - {pid: "17056600574", given_name: Kari, middle_name: Lise, family_name: Nordmann}
hpr:
  - number: "565501872"
    pid: "17056600574"
    approvals:
      - profession: LE
        specialities: [{value: "1", description: Allmennmedisin}]
`

type harness struct {
	*servertest.Server
	t testing.TB
}

// options of a test server.
type options struct {
	settings string
	// registry replaces the default registry (with its %s filled in).
	registry string
	// postLogout adds a post-logout redirect URI to the web client.
	postLogout string
}

func start(t testing.TB, o options) *harness {
	t.Helper()
	reg := o.registry
	if reg == "" {
		extra := ""
		if o.postLogout != "" {
			extra = ", " + o.postLogout
		}
		reg = strings.Replace(testRegistry, "%s", extra, 1)
	}
	settings := o.settings
	if !strings.Contains(settings, "environment:") {
		settings = "environment: test\n" + settings
	}
	if !strings.Contains(settings, "rate_limit:") {
		settings += "\nrate_limit:\n  login_per_minute: 10000\n"
	}
	s := servertest.Start(t, servertest.Options{Registry: reg, Settings: settings, Algorithm: "ES256"})
	return &harness{Server: s, t: t}
}

// browser is a browser without JavaScript: cookies, no redirects
// followed (each is looked at).
type browser struct {
	// choice is the last choice form testIDPForm posted.
	choice url.Values
	h      *harness
	c      *http.Client
	jar    *cookiejar.Jar
}

func (h *harness) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &browser{h: h, jar: jar, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is an HTTP answer, read.
type answer struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (a answer) location(t testing.TB) *url.URL {
	t.Helper()
	if a.status != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect: %.600s", a.status, a.body)
	}
	u, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// onward reads the page that sends the browser on to the client after an
// upstream login: a 200 with no Location, whose meta refresh and link
// both name the client's redirect URI.
func (a answer) onward(t testing.TB) *url.URL {
	t.Helper()
	if a.status != http.StatusOK || a.header.Get("Location") != "" {
		t.Fatalf("status %d, location %q, want the onward page: %.600s", a.status, a.header.Get("Location"), a.body)
	}
	m := onwardURL.FindStringSubmatch(string(a.body))
	if m == nil {
		t.Fatalf("no meta refresh in %.600s", a.body)
	}
	target := html.UnescapeString(m[1])
	if !strings.Contains(string(a.body), `<a href="`+m[1]+`">`) {
		t.Fatalf("the page's link is not its refresh target %q: %.600s", target, a.body)
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var onwardURL = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`)

// send sends req with c and reads the answer.
func send(t testing.TB, c *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
	_ = json.Unmarshal(body, &a.json)
	return a
}

func (b *browser) do(req *http.Request) answer {
	b.h.t.Helper()
	return send(b.h.t, b.c, req)
}

func (b *browser) get(path string) answer {
	b.h.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = b.h.URL + path
	}
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) answer {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.h.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// sessionCookie is the browser's session cookie value; "" without one.
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.h.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "tillit-session" {
			return c.Value
		}
	}
	return ""
}

var (
	csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
	txRE   = regexp.MustCompile(`name="tx" value="([^"]*)"`)
)

// formOf is the hidden fields of the page's form.
func formOf(t testing.TB, a answer) url.Values {
	t.Helper()
	c, tx := csrfRE.FindStringSubmatch(a.body), txRE.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || c == nil {
		t.Fatalf("no form (status %d): %.600s", a.status, a.body)
	}
	v := url.Values{"csrf_token": {c[1]}}
	if tx != nil {
		v.Set("tx", tx[1])
	}
	return v
}

// request is an authorization request of a client: what PAR gets.
type request struct {
	client, verifier string
	form             url.Values
}

func (h *harness) request(client string, change func(url.Values)) *request {
	verifier := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	sum := sha256.Sum256([]byte(verifier))
	redirect := map[string]string{"web": "https://web.example/callback", "other": "https://other.example/callback"}[client]
	r := &request{client: client, verifier: verifier, form: url.Values{
		"client_id":             {client},
		"response_type":         {"code"},
		"redirect_uri":          {redirect},
		"scope":                 {"openid nhn:deft/api"},
		"state":                 {"st-" + verifier[:8]},
		"nonce":                 {"n-" + verifier[:8]},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}}
	if change != nil {
		change(r.form)
	}
	return r
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func (h *harness) assertion(client string) string {
	k := h.Key(h.t, client)
	now := h.Clock.Now()
	return jwttest.JWT{Header: map[string]any{"alg": "ES256", "typ": "client-authentication+jwt", "kid": k.KeyID},
		Claims: map[string]any{"iss": client, "sub": client, "aud": h.URL, "jti": jws.NewJTI(),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix()},
		Key: k.Key.(crypto.Signer)}.Sign(h.t)
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

// backChannel posts a client's form (PAR, token) with its assertion.
func (h *harness) backChannel(path, client string, form url.Values, key *dpop.Signer) answer {
	h.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	f.Set("client_assertion", h.assertion(client))
	req, err := http.NewRequest(http.MethodPost, h.URL+path, strings.NewReader(f.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != nil {
		req.Header.Set("DPoP", h.proof(key, path))
	}
	return send(h.t, http.DefaultClient, req)
}

// userinfo calls the userinfo endpoint as a client does with a
// DPoP-bound access token: the DPoP scheme and a proof of key for this
// call and this token.
func (h *harness) userinfo(t testing.TB, key *dpop.Signer, accessToken string) answer {
	t.Helper()
	u := h.URL + token.UserinfoPath
	p, err := key.Proof(http.MethodGet, u, dpop.ProofOptions{AccessToken: accessToken, Now: h.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "DPoP "+accessToken)
	req.Header.Set("DPoP", p)
	return send(t, http.DefaultClient, req)
}

// rpClient is the client package's Client for one of the registry's
// clients, on the server's clock. A nil dpopKey means the client's own
// key signs its proofs.
func (h *harness) rpClient(t testing.TB, id string, dpopKey *jose.JSONWebKey) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Issuer: h.URL, ClientID: id, Key: h.Key(t, id), DPoPKey: dpopKey, Now: h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verified checks a token the server issued with plain go-jose against
// the server's published keys, and its typ header, and returns its
// claims.
func (h *harness) verified(t testing.TB, raw, typ string) map[string]any {
	t.Helper()
	// Access tokens have the server's algorithm; ID tokens are RS256, as
	// the clients here ask for nothing else.
	alg := jose.ES256
	if typ == "JWT" {
		alg = jose.RS256
	}
	tok, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	hdr := tok.Signatures[0].Header
	if got := hdr.ExtraHeaders[jose.HeaderType]; got != typ {
		t.Errorf("typ %v, want %s", got, typ)
	}
	set := h.Srv.Keys().JWKS()
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("%s: kid %q is not in the JWKS", typ, hdr.KeyID)
	}
	payload, err := tok.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("%s: signature: %v", typ, err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// authorizeURL pushes r and returns the URL the browser is sent to.
func (h *harness) authorizeURL(r *request, key *dpop.Signer) string {
	h.t.Helper()
	p := h.backChannel("/connect/par", r.client, r.form, key)
	if p.status != http.StatusCreated {
		h.t.Fatalf("PAR: %d %s", p.status, p.body)
	}
	return "/connect/authorize?" + url.Values{"client_id": {r.client}, "request_uri": {p.json["request_uri"].(string)}}.Encode()
}

// choose gets the IdP choice page of r in b and returns its form.
func (b *browser) choose(r *request) url.Values {
	b.h.t.Helper()
	return formOf(b.h.t, b.get(b.h.authorizeURL(r, nil)))
}

// testIDPForm chooses the TestIDP and returns the TestIDP form's fields.
func (b *browser) testIDPForm(r *request) url.Values {
	b.h.t.Helper()
	return b.testIDPFormAt(b.h.authorizeURL(r, nil))
}

// testIDPFormAt is testIDPForm from an authorization URL.
func (b *browser) testIDPFormAt(authURL string) url.Values {
	b.h.t.Helper()
	f := formOf(b.h.t, b.get(authURL))
	b.choice = url.Values{"csrf_token": {f.Get("csrf_token")}}
	f.Set("idp", "testidp-oidc")
	u := b.post("/login/idp", f).location(b.h.t)
	if u.Path != "/login/testidp" {
		b.h.t.Fatalf("choice went to %s", u)
	}
	return formOf(b.h.t, b.get(u.String()))
}

// login logs pid in through the pages and returns the redirect to the
// client.
func (b *browser) login(r *request, pid, level string) *url.URL {
	b.h.t.Helper()
	f := b.testIDPForm(r)
	f.Set("pid", pid)
	f.Set("security_level", level)
	return b.post("/login/testidp", f).location(b.h.t)
}

// code reads the stored code of a redirect to the client.
func (h *harness) code(u *url.URL) store.AuthorizationCode {
	h.t.Helper()
	v := u.Query().Get("code")
	if v == "" {
		h.t.Fatalf("no code in %s", u)
	}
	c, err := h.Store.AuthorizationCode(context.Background(), h.Clock.Now(), store.SecretID(v))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// idToken signs an ID token's claims with the server's signing key, as
// the server signs them, changed by change.
func (h *harness) idToken(client string, sub, sid string, change func(map[string]any)) string {
	h.t.Helper()
	now := h.Clock.Now()
	c := map[string]any{"iss": h.URL, "sub": sub, "aud": client, "sid": sid,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	if change != nil {
		change(c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := h.Srv.Keys().Signer()
	if err != nil {
		h.t.Fatal(err)
	}
	tok, err := s.SignIDToken(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// foreignIDToken is an ID token as idToken makes it, signed by a key that
// is not the server's, under the server's kid.
func (h *harness) foreignIDToken(client, sub string) string {
	h.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	s, _ := h.Srv.Keys().Signer()
	now := h.Clock.Now()
	return jwttest.JWT{Header: map[string]any{"alg": "ES256", "typ": "JWT", "kid": s.KeyID()},
		Claims: map[string]any{"iss": h.URL, "sub": sub, "aud": client, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()},
		Key:    k}.Sign(h.t)
}

func newDPoPKey(t testing.TB) *dpop.Signer {
	_, s := newRPKey(t)
	return s
}

// newRPKey is a client's DPoP key both as a JWK, for the client package,
// and as a signer, for the requests the harness makes itself, so that
// tokens bound by one are used with the other.
func newRPKey(t testing.TB) (*jose.JSONWebKey, *dpop.Signer) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return &jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256)}, s
}
