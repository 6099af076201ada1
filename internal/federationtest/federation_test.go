package federationtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/browsertest"
)

const (
	pid          = "06828399789" // synthetic: both servers run environment: test
	upstreamName = "upstream-sts"
	upstreamShow = "Upstream STS"
	downstreamID = "downstream-sts" // the downstream's client id at the upstream
	rpID         = "rp-web"
)

// server is a running tillit serve process.
type server struct {
	issuer string
	log    *output
	// config is the configuration file serve runs on.
	config string
}

type output struct {
	mu   sync.Mutex
	text strings.Builder
}

func (o *output) add(s string) {
	o.mu.Lock()
	o.text.WriteString(s + "\n")
	o.mu.Unlock()
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// freeAddr is a loopback address to listen on: the issuers are fixed
// before either server starts, as each names the other in its
// configuration.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serve runs tillit serve on the configuration doc at addr until t ends.
func serve(t *testing.T, name, addr, doc string) *server {
	t.Helper()
	if err := lookAtSources(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	doc = strings.ReplaceAll(doc, "STORAGE", filepath.Join(dir, "tillit.db"))
	config := filepath.Join(dir, "tillit.yaml")
	if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	cmd := exec.Command(tillitBin, "serve", "--config", config)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TILLIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TILLIT_KEY_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(kek))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{issuer: "http://" + addr, log: &output{}, config: config}
	serving := make(chan struct{}, 1)
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			s.log.add(sc.Text())
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "tillit is serving" {
				serving <- struct{}{}
			}
		}
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s tillit serve log:\n%s", name, s.log)
		}
	})
	select {
	case <-serving:
	case <-exited:
		t.Fatalf("%s tillit serve exited: %v\n%s", name, cmd.ProcessState, s.log)
	case <-time.After(time.Minute):
		t.Fatalf("%s tillit serve did not start within a minute\n%s", name, s.log)
	}
	return s
}

// idpJWKS runs tillit idp jwks on a server's configuration and returns
// the key set it prints, on one line.
func idpJWKS(t *testing.T, s *server, idp string) string {
	t.Helper()
	cmd := exec.Command(tillitBin, "idp", "jwks", idp, "--config", s.config)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TILLIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tillit idp jwks %s: %v", idp, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(out, &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Fatalf("tillit idp jwks %s printed %s (%v), want one public key", idp, out, err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ecKey is a client's P-256 key and its public JWK.
func ecKey(t *testing.T, kid string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := (&jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pub)
}

// assertion is a private_key_jwt client assertion for issuer.
func assertion(t *testing.T, key *ecdsa.PrivateKey, kid, clientID, issuer string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("client-authentication+jwt").WithHeader("kid", kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, _ := json.Marshal(map[string]any{
		"iss": clientID, "sub": clientID, "aud": issuer, "jti": random(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	j, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := j.CompactSerialize()
	return out
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// post sends a form and decodes the JSON answer.
func post(t *testing.T, endpoint string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("POST %s: %s: %s", endpoint, resp.Status, b)
	}
	return resp.StatusCode, v
}

// claimsOf verifies a JWT of the server's against its published keys and
// returns its claims.
func claimsOf(t *testing.T, s *server, raw string) map[string]any {
	t.Helper()
	resp, err := http.Get(s.issuer + "/.well-known/openid-configuration/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	j, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.ES384})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(j.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		t.Fatalf("no published key %q", j.Signatures[0].Header.KeyID)
	}
	b, err := j.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// callback is the relying party's redirect URI.
type callback struct {
	mu    sync.Mutex
	query url.Values
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" {
		http.NotFound(w, r) // a browser's /favicon.ico must not overwrite the callback
		return
	}
	c.mu.Lock()
	c.query = r.URL.Query()
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, `<!doctype html><html lang="en"><title>client</title><p id="result">logged in</p>`)
}

func (c *callback) got() url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.query
}

// federation is the two servers and the relying party of a test.
type federation struct {
	up, down *server
	rp       *httptest.Server
	cb       *callback
	rpKey    *ecdsa.PrivateKey
}

// login is one login's relying-party side.
type login struct {
	verifier, state, nonce, authURL string
}

// newFederation starts the downstream, which offers its TestIDP and the
// upstream and makes its own private_key_jwt key for the upstream at its
// first start, and then the upstream, whose one client is the downstream
// (private_key_jwt with the key the downstream printed, PAR required, as
// Tillit's clients are by default).
func newFederation(t *testing.T) *federation {
	t.Helper()
	upAddr, downAddr := freeAddr(t), freeAddr(t)
	upIssuer, downIssuer := "http://"+upAddr, "http://"+downAddr

	rpKey, rpPub := ecKey(t, "rp-1")
	cb := &callback{}
	rp := httptest.NewServer(cb)
	t.Cleanup(rp.Close)

	down := serve(t, "downstream", downAddr, fmt.Sprintf(`environment: test
issuer: %s
listen: %s
storage: STORAGE
log:
  format: json
apis:
  - audience: nhn:rp-api
    name: RP API
    scopes: [nhn:rp-api/read]
    allow_bearer: true
organisations:
  - number: "310202029"
    name: Leverandør AS
  - number: "310303038"
    name: Legesenter AS
client_systems:
  - id: epj
    name: EPJ
    supplier: "310202029"
clients:
  - id: %s
    name: Relying party
    system: epj
    organisation: "310303038"
    grant_types: [authorization_code]
    scopes: [nhn:rp-api/read]
    identity_scopes: [openid, helseid://scopes/identity/pid, helseid://scopes/identity/security_level]
    redirect_uris: [%s/callback]
    jwks: {"keys": [%s]}
identity_providers:
  - name: testidp-oidc
    type: testidp
    display_name: TestIDP
  - name: %s
    type: oidc
    display_name: %s
    issuer: %s
    client_id: %s
    # Tillit makes the key at its first start; the upstream registers
    # what tillit idp jwks prints.
    auth: private_key_jwt
    algorithm: PS256
    scopes: [openid, helseid://scopes/identity/pid, helseid://scopes/identity/security_level, nhn:downstream-login/login]
    pid_claim: helseid://claims/identity/pid
    # a HelseID-shaped ID token has no acr: its security_level ("4") is the level
    acr_claim: helseid://claims/identity/security_level
`, downIssuer, downAddr, rpID, rp.URL, rpPub, upstreamName, upstreamShow, upIssuer, downstreamID))

	// The operator registers the downstream's key at the upstream: what
	// tillit idp jwks prints, from the downstream's store, without its
	// key-encryption key.
	downPub := idpJWKS(t, down, upstreamName)

	up := serve(t, "upstream", upAddr, fmt.Sprintf(`environment: test
issuer: %s
listen: %s
storage: STORAGE
log:
  format: json
apis:
  - audience: nhn:downstream-login
    name: Downstream login
    scopes: [nhn:downstream-login/login]
    # the downstream uses only the ID token and sends no DPoP proofs.
    allow_bearer: true
organisations:
  - number: "310202029"
    name: Leverandør AS
  - number: "310303038"
    name: Legesenter AS
client_systems:
  - id: sts
    name: Downstream STS
    supplier: "310202029"
clients:
  - id: %s
    name: Downstream STS
    system: sts
    organisation: "310303038"
    grant_types: [authorization_code]
    scopes: [nhn:downstream-login/login]
    identity_scopes: [openid, helseid://scopes/identity/pid, helseid://scopes/identity/security_level]
    redirect_uris: [%s/login/callback/%s]
    jwks: %s
identity_providers:
  - name: testidp-oidc
    type: testidp
    display_name: TestIDP
`, upIssuer, upAddr, downstreamID, downIssuer, upstreamName, downPub))

	return &federation{up: up, down: down, rp: rp, cb: cb, rpKey: rpKey}
}

// start is the relying party's PAR at the downstream; it returns the
// authorization URL to send the browser to.
func (f *federation) start(t *testing.T) login {
	t.Helper()
	down, rp, rpKey := f.down, f.rp, f.rpKey
	// The relying party pushes its request to the downstream.
	verifier, state, nonce := random(), random(), random()
	challenge := sha256.Sum256([]byte(verifier))
	status, par := post(t, down.issuer+"/connect/par", url.Values{
		"client_id": {rpID}, "response_type": {"code"}, "redirect_uri": {rp.URL + "/callback"},
		"scope": {"openid helseid://scopes/identity/pid helseid://scopes/identity/security_level nhn:rp-api/read"},
		"state": {state}, "nonce": {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion(t, rpKey, "rp-1", rpID, down.issuer)},
	})
	requestURI, _ := par["request_uri"].(string)
	if status != http.StatusCreated || requestURI == "" {
		t.Fatalf("PAR at the downstream: %d %v", status, par)
	}

	return login{verifier: verifier, state: state, nonce: nonce,
		authURL: down.issuer + "/connect/authorize?" + url.Values{"client_id": {rpID}, "request_uri": {requestURI}}.Encode()}
}

// finish checks the relying party's callback, redeems the code at the
// downstream and checks the tokens name the person from the upstream.
func (f *federation) finish(t *testing.T, l login) {
	t.Helper()
	down, rp, rpKey, cb := f.down, f.rp, f.rpKey, f.cb
	verifier, state, nonce := l.verifier, l.state, l.nonce
	q := cb.got()
	if q.Get("state") != state || q.Get("iss") != down.issuer || q.Get("code") == "" {
		t.Fatalf("relying party callback %v", q)
	}

	// The relying party redeems the code at the downstream.
	status, tok := post(t, down.issuer+"/connect/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
		"redirect_uri": {rp.URL + "/callback"}, "client_id": {rpID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion(t, rpKey, "rp-1", rpID, down.issuer)},
	})
	if status != http.StatusOK {
		t.Fatalf("token at the downstream: %d %v", status, tok)
	}
	for _, name := range []string{"access_token", "id_token"} {
		raw, _ := tok[name].(string)
		c := claimsOf(t, down, raw)
		if c["iss"] != down.issuer || c["helseid://claims/identity/pid"] != pid ||
			c["helseid://claims/identity/security_level"] != "4" || c["idp"] != upstreamName {
			t.Errorf("%s claims %v: want the downstream naming %s at level 4 from %s", name, c, pid, upstreamName)
		}
		if name == "id_token" && c["nonce"] != nonce {
			t.Errorf("id_token nonce %v, want %s", c["nonce"], nonce)
		}
	}
}

// TestUpstreamTillit starts a login at a relying party of one Tillit (the
// downstream) whose identity provider is another Tillit (the upstream),
// in a browser without JavaScript: the relying party's PAR, the
// downstream's choice page, whose form-action must allow the redirect to
// the upstream, the downstream's PAR to the upstream, and the upstream's
// TestIDP form.
func TestUpstreamTillit(t *testing.T) {
	f := newFederation(t)
	up := f.up
	l := f.start(t)
	authURL := l.authURL
	ctx := browsertest.Tab(t, browsertest.Options{AcceptLanguage: "en-US,en;q=0.9"})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		// The downstream's choice page: the upstream by its name.
		chromedp.Click(browsertest.ByText(upstreamShow)),
		// The upstream offers one provider, so it goes straight to its
		// TestIDP form (the downstream's choice page has no such field).
		chromedp.WaitReady(browsertest.ByLabel("National identity number")),
	); err != nil {
		at, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%v (at %s)", err, at)
	}
	at, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(at, up.issuer+"/") {
		t.Fatalf("the TestIDP form is at %s, not the upstream", at)
	}
	// The form is filled in and posted as a person would. Chromium
	// applies the upstream page's CSP form-action to every redirect after
	// the post, and the upstream cannot list the relying party: the
	// downstream's callback answers with a page that sends the browser on
	// (a meta refresh, no JavaScript), which ends the redirect chain.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(browsertest.ByLabel("National identity number"), pid),
		chromedp.Click(browsertest.ByLabel("Level 4 (high)")),
		chromedp.Click(browsertest.ByText("Log in")),
		chromedp.WaitReady(chromedp.ID("result")),
	); err != nil {
		at, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%v (at %s)", err, at)
	}
	if at, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(at, f.rp.URL+"/callback?") {
		t.Fatalf("the browser ended at %s (%v), not the relying party's callback", at, err)
	}
	f.finish(t, l)
}

// onward follows the page the downstream answers an upstream login with
// (its meta refresh), as a browser does.
func onward(t *testing.T, browser *http.Client, page *http.Response) *http.Response {
	t.Helper()
	b, _ := io.ReadAll(io.LimitReader(page.Body, 1<<20))
	page.Body.Close()
	m := metaRefresh.FindSubmatch(b)
	if page.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("%s: %d, no onward page:\n%s", page.Request.URL, page.StatusCode, b)
	}
	resp, err := browser.Get(html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var metaRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`)

// hidden reads a form's action and hidden fields from a login page.
var (
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit posts the page's form with its hidden fields and more, as a
// browser would, following the redirects.
func submit(t *testing.T, browser *http.Client, page *http.Response, more url.Values) *http.Response {
	t.Helper()
	b, _ := io.ReadAll(io.LimitReader(page.Body, 1<<20))
	page.Body.Close()
	a := formAction.FindSubmatch(b)
	if page.StatusCode != http.StatusOK || a == nil {
		t.Fatalf("%s: %d, no form:\n%s", page.Request.URL, page.StatusCode, b)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllSubmatch(b, -1) {
		form.Set(html.UnescapeString(string(m[1])), html.UnescapeString(string(m[2])))
	}
	for k, v := range more {
		form[k] = v
	}
	to, err := page.Request.URL.Parse(html.UnescapeString(string(a[1])))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := browser.PostForm(to.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestUpstreamTillitHTTP is the whole login with a plain HTTP client as
// the browser (a cookie jar, the pages' forms posted as they are): the
// relying party's PAR, the downstream's choice page, the upstream's
// TestIDP form, the downstream's callback, the relying party's callback,
// and the tokens naming the person with the upstream's level 4 and the
// upstream as idp.
func TestUpstreamTillitHTTP(t *testing.T) {
	f := newFederation(t)
	l := f.start(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	choice, err := browser.Get(l.authURL)
	if err != nil {
		t.Fatal(err)
	}
	form := submit(t, browser, choice, url.Values{"idp": {upstreamName}})
	if !strings.HasPrefix(form.Request.URL.String(), f.up.issuer+"/login/testidp") {
		t.Fatalf("choosing the upstream led to %s, not its TestIDP", form.Request.URL)
	}
	done := onward(t, browser, submit(t, browser, form, url.Values{"pid": {pid}, "security_level": {"4"}}))
	done.Body.Close()
	if done.Request.URL.Path != "/callback" || !strings.HasPrefix(done.Request.URL.String(), f.rp.URL) {
		t.Fatalf("the login ended at %s, not the relying party's callback", done.Request.URL)
	}
	f.finish(t, l)
}
