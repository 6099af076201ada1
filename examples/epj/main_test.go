package main

// The whole path in a real browser without JavaScript, with real servers
// in-process: the STS (internal/servertest) with a registry like serve
// --dev's, Reseptformidleren and SFM (the APIs of examples/reseptformidleren
// and examples/sfm) and this EPJ, each on httptest. A doctor logs in at the
// TestIDP, sends a prescription and sees Reseptformidleren's answer, then
// logs out. Only the clock is fake, shared by all.

import (
	"context"
	"net/http/httptest"
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

	// Log out: the EPJ's session ends, the STS's too, and the browser is
	// back at the EPJ's front page.
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
}
