package main

// The whole path in a real browser without JavaScript, with real servers
// in-process: the STS (internal/servertest) with a registry like serve
// --dev's, Reseptformidleren and SFM (the APIs of examples/reseptformidleren
// and examples/sfm) and this EPJ, each on httptest. A doctor logs in at the
// TestIDP, sends a prescription and sees Reseptformidleren's answer, then
// logs out. Only the clock is fake, shared by all.

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/examples/reseptformidleren/rfapi"
	"github.com/tillit-sts/tillit/examples/sfm/sfmapi"
	"github.com/tillit-sts/tillit/internal/browsertest"
	"github.com/tillit-sts/tillit/internal/servertest"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// The doctor: person 0 of the dev population, with HPR number 9100013.
const (
	doctorPID  = "03814000086"
	doctorHPR  = "9100013"
	doctorName = "Anne Hansen"
)

// registry is the part of serve --dev's registry this path needs; EPJURL
// is filled in with the test server's address for post-logout.
const registry = `
apis:
  - audience: e-helse:sfm.api
    name: SFM
    scopes: [e-helse:sfm.api/sfm.api]
    client_claims: [sfm-id]
    owners: [demo-sfm-api]
  - audience: e-helse:reseptformidleren
    name: Reseptformidleren
    scopes: [e-helse:reseptformidleren/rf]
    subject_claims: [e-helse:sfm.api/client/claims/sfm-id]
organisations:
  - {number: "310900028", name: Tillit Demo Leverandør AS}
  - {number: "310900036", name: Demo Legekontor AS}
  - {number: "310900109", name: Demo SFM}
client_systems:
  - {id: demo-epj, name: Demo EPJ, supplier: "310900028", apis: [e-helse:sfm.api]}
  - {id: demo-sfm-system, name: SFM, supplier: "310900109", apis: [e-helse:reseptformidleren]}
clients:
  - id: demo-epj
    name: Demo EPJ
    system: demo-epj
    organisation: "310900036"
    grant_types: [authorization_code, refresh_token]
    scopes: [e-helse:sfm.api/sfm.api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid, helseid://scopes/identity/security_level, helseid://scopes/hpr/hpr_number]
    claims: {e-helse:sfm.api: {sfm-id: 0c4c1b49-8a8e-4c3b-9f6e-6f3f5d2b7a11}}
    exchange_actors: [demo-sfm-api]
    redirect_uris: [http://127.0.0.1/callback]
    allow_loopback_any_port: true
    post_logout_redirect_uris: [EPJURL/]
    jwks: {{jwks "demo-epj" "ES256"}}
  - id: demo-sfm-api
    name: SFM's own client
    system: demo-sfm-system
    organisation: "310900109"
    grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [e-helse:reseptformidleren/rf]
    jwks: {{jwks "demo-sfm-api" "ES256"}}
identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: TestIDP}
persons:
  - {pid: "03814000086", given_name: Anne, family_name: Hansen}
hpr:
  - number: "9100013"
    pid: "03814000086"
    approvals: [{profession: LE}]
`

// world is the four servers.
type world struct {
	sts *servertest.Server
	epj *app
	url string // the EPJ's
}

func start(t *testing.T) *world {
	t.Helper()
	epjSrv := httptest.NewUnstartedServer(nil)
	epjURL := "http://" + epjSrv.Listener.Addr().String()
	sts := servertest.Start(t, servertest.Options{Registry: strings.ReplaceAll(registry, "EPJURL", epjURL),
		Settings: "environment: test\nrate_limit:\n  login_per_minute: 10000\n"})

	rfHandler, _, err := rfapi.NewAPI(sts.URL, "", sts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	rf := httptest.NewServer(rfHandler)
	t.Cleanup(rf.Close)

	sfmClient, err := client.New(client.Config{Issuer: sts.URL, ClientID: "demo-sfm-api", Key: sts.Key(t, "demo-sfm-api"),
		GenerateDPoPKey: true, Now: sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sfmHandler, _, err := sfmapi.NewAPI(sts.URL, "", sfmClient, rf.URL, nil, sts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	sfm := httptest.NewServer(sfmHandler)
	t.Cleanup(sfm.Close)

	epjClient, err := client.New(client.Config{Issuer: sts.URL, ClientID: "demo-epj", Key: sts.Key(t, "demo-epj"),
		GenerateDPoPKey: true, Now: sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(epjClient, sts.URL, epjURL, sfm.URL, "testidp-oidc", nil)
	a.now = sts.Clock.Now
	epjSrv.Config.Handler = a
	epjSrv.Start()
	t.Cleanup(epjSrv.Close)
	return &world{sts: sts, epj: a, url: epjURL}
}

// text is the text of the element with id, "" when there is none.
func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById(`+strconv.Quote(id)+`) || {textContent: ""}).textContent.trim()`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBrowserPrescription(t *testing.T) {
	w := start(t)
	ctx := browsertest.Tab(t, browsertest.Options{AcceptLanguage: "en-US,en;q=0.9"})

	// Log in: the EPJ's button, then the TestIDP's form by its label.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(w.url+"/"),
		chromedp.Click(browsertest.ByText("Log in")),
		chromedp.WaitReady(browsertest.ByLabel("National identity number")),
		chromedp.SendKeys(browsertest.ByLabel("National identity number"), doctorPID),
		chromedp.Click(browsertest.ByText("Log in")),
		chromedp.WaitReady(chromedp.ID("doctor")),
	); err != nil {
		t.Fatal(err)
	}
	if name, hpr, level := text(t, ctx, "name"), text(t, ctx, "hpr"), text(t, ctx, "level"); name != doctorName || hpr != doctorHPR || level != "4" {
		t.Errorf("the page shows doctor %q, HPR %q, level %q; want %q, %q, 4", name, hpr, level, doctorName, doctorHPR)
	}

	// The prescription goes through SFM to Reseptformidleren.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(browsertest.ByLabel("Drug"), "Paracetamol 500 mg"),
		chromedp.Click(browsertest.ByText("Send prescription")),
		chromedp.WaitReady(chromedp.ID("answer")),
	); err != nil {
		t.Fatal(err)
	}
	if e := text(t, ctx, "error"); e != "" {
		t.Fatalf("error on the page: %s", e)
	}
	for id, want := range map[string]string{
		"answer-drug": "Paracetamol 500 mg", "answer-hpr": doctorHPR, "answer-epj": "demo-epj", "answer-sfm": "demo-sfm-api",
	} {
		if got := text(t, ctx, id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}

	// Log out: the EPJ's session ends, the STS's too (it follows the
	// registered post_logout_redirect_uri only after ending it), and the
	// browser is back at the EPJ's front page.
	if err := chromedp.Do(ctx,
		chromedp.Click(browsertest.ByText("Log out")),
		chromedp.WaitReady(browsertest.ByText("Log in")),
	); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || loc != w.url+"/" {
		t.Errorf("after logout at %q, %v; want %q", loc, err, w.url+"/")
	}
	w.epj.mu.Lock()
	n := len(w.epj.sessions)
	w.epj.mu.Unlock()
	if n != 0 {
		t.Errorf("%d EPJ sessions after logout", n)
	}
	// The STS ended its session: a new login asks for the pid again
	// rather than coming straight back.
	if err := chromedp.Do(ctx,
		chromedp.Click(browsertest.ByText("Log in")),
		chromedp.WaitReady(browsertest.ByLabel("National identity number")),
	); err != nil {
		t.Fatal(err)
	}
}

// logIn makes a login for the EPJ without a browser (the TestIDP takes
// test_pid) and gives it a session, whose cookie it returns.
func (w *world) logIn(t *testing.T) *session {
	t.Helper()
	ctx := context.Background()
	p, err := w.epj.client.PushAuthorization(ctx, client.AuthRequest{RedirectURI: w.url + "/callback", Scopes: loginScopes,
		Resources: []string{sfmAudience}, ACRValues: []string{"idp:testidp-oidc"},
		Extra: url.Values{"test_pid": {doctorPID}, "test_security_level": {"4"}}})
	if err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), w.url) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := hc.Get(p.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Exchange(ctx, loc.Query())
	if err != nil {
		t.Fatal(err)
	}
	s := w.epj.newSession(httptest.NewRecorder())
	s.login = l
	return s
}

// TestFormsRefused: the EPJ's forms act only for the session they were
// made for. Each row starts from a valid prescription and breaks one
// thing.
func TestFormsRefused(t *testing.T) {
	w := start(t)
	s := w.logIn(t)
	other := w.logIn(t)
	valid := func() (cookie string, form url.Values) {
		return s.id, url.Values{"csrf": {w.epj.csrf(s)}, "drug": {"Paracetamol"}}
	}
	tests := []struct {
		name     string
		path     string
		change   func(cookie *string, f url.Values)
		wantCode int
		wantText string
	}{
		{name: "valid", path: "/prescriptions", change: func(*string, url.Values) {}, wantCode: http.StatusOK, wantText: "demo-sfm-api"},
		{name: "no cookie", path: "/prescriptions", change: func(c *string, _ url.Values) { *c = "" }, wantCode: http.StatusUnauthorized, wantText: "not logged in"},
		{name: "unknown session", path: "/prescriptions", change: func(c *string, _ url.Values) { *c = "forged" }, wantCode: http.StatusUnauthorized, wantText: "not logged in"},
		{name: "no csrf", path: "/prescriptions", change: func(_ *string, f url.Values) { f.Del("csrf") }, wantCode: http.StatusForbidden, wantText: "stale"},
		{name: "csrf altered", path: "/prescriptions", change: func(_ *string, f url.Values) { f.Set("csrf", f.Get("csrf")[1:]+"A") }, wantCode: http.StatusForbidden, wantText: "stale"},
		{name: "csrf of another session", path: "/prescriptions", change: func(_ *string, f url.Values) { f.Set("csrf", w.epj.csrf(other)) }, wantCode: http.StatusForbidden, wantText: "stale"},
		{name: "no drug", path: "/prescriptions", change: func(_ *string, f url.Values) { f.Set("drug", " ") }, wantCode: http.StatusBadRequest, wantText: "Name a drug"},
		{name: "drug too long", path: "/prescriptions", change: func(_ *string, f url.Values) { f.Set("drug", strings.Repeat("x", maxDrug+1)) }, wantCode: http.StatusBadRequest, wantText: "Name a drug"},
		{name: "logout, csrf of another session", path: "/logout", change: func(_ *string, f url.Values) { f.Set("csrf", w.epj.csrf(other)) }, wantCode: http.StatusForbidden, wantText: "stale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cookie, form := valid()
			tt.change(&cookie, form)
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if cookie != "" {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
			}
			rec := httptest.NewRecorder()
			w.epj.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantText) {
				t.Fatalf("status %d, want %d with %q:\n%s", rec.Code, tt.wantCode, tt.wantText, rec.Body)
			}
		})
	}
	// The refused logout ended nothing.
	if w.epj.sessions[s.id] == nil {
		t.Error("a refused form ended the session")
	}
}

// TestCallbackWithoutLogin: a callback in a browser that started no login
// is refused, whatever its query.
func TestCallbackWithoutLogin(t *testing.T) {
	w := start(t)
	rec := httptest.NewRecorder()
	w.epj.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?code=x&state=y&iss="+url.QueryEscape(w.sts.URL), nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "No login was started") {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}
