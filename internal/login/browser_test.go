package login_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/browsertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// rp is a client's web side: where the browser lands after login and
// logout. It records what arrived.
type rp struct {
	*httptest.Server
	mu   sync.Mutex
	got  map[string]url.Values
	seen []string
}

func newRP(t *testing.T) *rp {
	r := &rp{got: map[string]url.Values{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.got[req.URL.Path] = req.URL.Query()
		r.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>client</title><p id="result">%s</p>`, strings.TrimPrefix(req.URL.Path, "/"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *rp) query(path string) url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[path]
}

// texts are what a user of each language sees, to find things by, and
// the security level each language's run logs in with.
var browserLanguages = []struct {
	acceptLanguage, lang           string
	pidLabel, submit, logoutButton string
	levelLabel, level              string
}{
	{acceptLanguage: "nb-NO,nb;q=0.9,en;q=0.5", lang: "nb", pidLabel: "Fødselsnummer", submit: "Logg inn", logoutButton: "Logg ut",
		levelLabel: "Nivå 3 (betydelig)", level: "3"},
	{acceptLanguage: "en-US,en;q=0.9", lang: "en", pidLabel: "National identity number", submit: "Log in", logoutButton: "Log out",
		levelLabel: "Level 4 (high)", level: "4"},
}

// checkPage asserts what every page must be in a browser: its language,
// no sideways scrolling at 375 px, and an accessible name on each of its
// wantControls controls.
func checkPage(t *testing.T, ctx context.Context, lang string, wantControls int) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || got != lang {
		t.Errorf("lang %q, %v, want %q", got, err, lang)
	}
	if w, err := browsertest.ScrollWidth(ctx); err != nil || w > 375 {
		t.Errorf("scroll width %d, %v: the page scrolls sideways at 375 px", w, err)
	}
	controls, err := browsertest.Controls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(controls) != wantControls {
		t.Errorf("controls %v, want %d", controls, wantControls)
	}
	for _, c := range controls {
		if c.Name == "" {
			t.Errorf("%s without an accessible name", c.Role)
		}
	}
}

// The APIs of the login path and their scopes.
const (
	deftAPI   = "nhn:deft"
	deftScope = "nhn:deft/api"
	sfmAPI    = "e-helse:sfm.api"
	sfmScope  = "e-helse:sfm.api/sfm.api"
	rfAPI     = "e-helse:reseptformidleren"
	rfScope   = "e-helse:reseptformidleren/rf"
)

// TestBrowserLogin is a person's whole login as a client and its APIs
// make it, in a real browser without JavaScript at a phone's width:
//
//   - PAR with DPoP by the client, the choice of provider and the TestIDP
//     form in the browser, the code at the client's loopback callback
//     with state and iss;
//   - the code redeemed for a DPoP-bound access token, an ID token and a
//     refresh token;
//   - userinfo with that token: the person by the login's scopes, with
//     the names and the HPR approvals from the registers;
//   - a refresh for a second API, SFM, which keeps the person;
//   - SFM's own client exchanging that token for Reseptformidleren
//     (RFC 8693), and Reseptformidleren's own client introspecting the
//     result: both name the person, the first client and the actor;
//   - logout through the browser, after which prompt=none finds no
//     session, where just before it found one.
//
// The client's side is the client package where it has the call
// (refresh, exchange), and plain HTTP with a DPoP signer where it has
// not (PAR, the code, userinfo, introspection).
func TestBrowserLogin(t *testing.T) {
	app := newRP(t)
	h := start(t, options{postLogout: app.URL + "/logged-out"})
	bg := context.Background()
	for _, l := range browserLanguages {
		t.Run(l.lang, func(t *testing.T) {
			jwk, key := newRPKey(t)
			r := h.request("web", func(f url.Values) {
				f.Set("redirect_uri", app.URL+"/callback")
				f.Set("scope", strings.Join([]string{helseid.ScopeOpenID, helseid.ScopeProfile, helseid.ScopeOfflineAccess,
					helseid.ScopePID, helseid.ScopeSecurityLevel, helseid.ScopeHPRNumber, deftScope, sfmScope}, " "))
				// Both APIs are named at login; the code's token is for
				// the first, the refresh token gets the other.
				f["resource"] = []string{deftAPI, sfmAPI}
			})
			authURL := h.authorizeURL(r, key)
			ctx := browsertest.Tab(t, browsertest.Options{AcceptLanguage: l.acceptLanguage})

			// Choose the TestIDP by its button.
			if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+authURL)); err != nil {
				t.Fatal(err)
			}
			checkPage(t, ctx, l.lang, 2)
			if err := chromedp.Do(ctx,
				chromedp.Click(browsertest.ByText("TestIDP")),
				chromedp.WaitReady(browsertest.ByLabel(l.pidLabel)),
			); err != nil {
				t.Fatal(err)
			}
			// The form, found by its labels: pid, two levels, HPR
			// number, the button. The HPR number is left to the
			// register.
			checkPage(t, ctx, l.lang, 5)
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(browsertest.ByLabel(l.pidLabel), pid),
				chromedp.Click(browsertest.ByLabel(l.levelLabel)),
				chromedp.Click(browsertest.ByText(l.submit)),
				chromedp.WaitReady(chromedp.ID("result")),
			); err != nil {
				t.Fatal(err)
			}
			q := app.query("/callback")
			if q.Get("state") != r.form.Get("state") || q.Get("iss") != h.URL || q.Get("code") == "" {
				t.Fatalf("callback query %v", q)
			}

			// The client redeems the code with its DPoP key: an access
			// token for the first API bound to the key, an ID token and,
			// for offline_access, a refresh token.
			tok := h.backChannel("/connect/token", "web", url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {r.verifier},
				"redirect_uri": {r.form.Get("redirect_uri")}, "client_id": {"web"},
			}, key)
			at, _ := tok.json["access_token"].(string)
			idt, _ := tok.json["id_token"].(string)
			rt, _ := tok.json["refresh_token"].(string)
			if tok.status != http.StatusOK || tok.json["token_type"] != "DPoP" || at == "" || idt == "" || rt == "" {
				t.Fatalf("token: %d %s", tok.status, tok.body)
			}
			ac := h.verified(t, at, "at+jwt")
			sub, _ := ac["sub"].(string)
			if len(sub) != 44 {
				t.Fatalf("access token sub %q: want the pid's 44-character pseudonym", sub)
			}
			wantPerson := map[string]any{"sub": sub, helseid.ClaimPID: pid, helseid.ClaimSecurityLevel: l.level, helseid.ClaimHPRNumber: hpr}
			checkClaims(t, "access token", ac, wantPerson)
			checkClaims(t, "access token", ac, map[string]any{"aud": deftAPI, "client_id": "web", "cnf": map[string]any{"jkt": key.Thumbprint()}})
			id := h.verified(t, idt, "JWT")
			checkClaims(t, "ID token", id, wantPerson)
			checkClaims(t, "ID token", id, map[string]any{"aud": "web", "nonce": r.form.Get("nonce"), "sid": ac["sid"], "name": "Kari Lise Nordmann"})

			// Userinfo, asked with the access token and a proof of its
			// key: the person, the names (profile) and the HPR approvals
			// from the registers, and none of the login's own claims.
			ui := h.userinfo(t, key, at)
			if ui.status != http.StatusOK {
				t.Fatalf("userinfo: %d %s", ui.status, ui.body)
			}
			checkClaims(t, "userinfo", ui.json, wantPerson)
			checkClaims(t, "userinfo", ui.json, map[string]any{
				"name": "Kari Lise Nordmann", "given_name": "Kari", "middle_name": "Lise", "family_name": "Nordmann",
				"userinfo_issued_at": float64(h.Clock.Now().Unix()),
			})
			for _, k := range []string{"auth_time", "idp", "amr", "sid"} {
				if _, ok := ui.json[k]; ok {
					t.Errorf("userinfo has the login's %s", k)
				}
			}
			var details struct {
				HPR struct {
					Approvals []struct {
						Profession   string `json:"profession"`
						Specialities []struct {
							Value       string `json:"value"`
							Description string `json:"description"`
						} `json:"specialities"`
					} `json:"approvals"`
				} `json:"helseid://claims/hpr/hpr_details"`
			}
			if err := json.Unmarshal([]byte(ui.body), &details); err != nil {
				t.Fatal(err)
			}
			if a := details.HPR.Approvals; len(a) != 1 || a[0].Profession != "LE" || len(a[0].Specialities) != 1 ||
				a[0].Specialities[0].Value != "1" || a[0].Specialities[0].Description != "Allmennmedisin" {
				t.Errorf("userinfo hpr_details %+v, want the register's approval: LE, Allmennmedisin", details.HPR)
			}

			// The client refreshes for SFM with the client package and
			// the same DPoP key: a token for SFM that still names the
			// person, and the next refresh token.
			web := h.rpClient(t, "web", jwk)
			rr, err := web.Refresh(bg, client.RefreshRequest{RefreshToken: rt, Resource: sfmAPI})
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if rr.RefreshToken == "" || rr.RefreshToken == rt {
				t.Errorf("refresh token not rotated")
			}
			sc := h.verified(t, rr.AccessToken, "at+jwt")
			checkClaims(t, "refreshed token", sc, wantPerson)
			checkClaims(t, "refreshed token", sc, map[string]any{"aud": sfmAPI, "client_id": "web", "sid": ac["sid"],
				"idp": ac["idp"], "auth_time": ac["auth_time"], "cnf": map[string]any{"jkt": key.Thumbprint()}})

			// SFM got that token from the client; its own client, an
			// owner of SFM that the web client allows, exchanges it for
			// Reseptformidleren (RFC 8693).
			sfm := h.rpClient(t, "sfm", nil)
			xr, err := sfm.Exchange(bg, client.ExchangeRequest{SubjectToken: rr.AccessToken, Scopes: []string{rfScope}})
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if xr.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" || !strings.EqualFold(xr.TokenType, "DPoP") {
				t.Errorf("exchange issued_token_type %q token_type %q", xr.IssuedTokenType, xr.TokenType)
			}
			xc := h.verified(t, xr.AccessToken, "at+jwt")
			checkClaims(t, "exchanged token", xc, wantPerson)
			// The chain: the actor is the client, the first client and
			// its organisation stay, and act names the actor and the
			// organisation it acts for.
			chain := map[string]any{"aud": rfAPI, "client_id": "sfm", helseid.ClaimOriginalClientID: "web",
				helseid.ClaimOrgNrParent: "310900036", "sid": ac["sid"], "idp": ac["idp"], "auth_time": ac["auth_time"],
				"act": map[string]any{"iss": h.URL, "client_id": "sfm", helseid.ClaimOrgNrParent: "310900109"}}
			checkClaims(t, "exchanged token", xc, chain)
			checkClaims(t, "exchanged token", xc, map[string]any{"cnf": map[string]any{"jkt": sfm.DPoPThumbprint()}})

			// Reseptformidleren's own client introspects it and learns who
			// the person is and which clients the token passed through;
			// SFM's, not an owner of Reseptformidleren, learns nothing.
			in := h.backChannel(token.IntrospectionPath, "rf", url.Values{"token": {xr.AccessToken}}, nil)
			if in.status != http.StatusOK || in.json["active"] != true {
				t.Fatalf("introspection: %d %s", in.status, in.body)
			}
			checkClaims(t, "introspection", in.json, wantPerson)
			checkClaims(t, "introspection", in.json, chain)
			checkClaims(t, "introspection", in.json, map[string]any{"token_type": "DPoP", "scope": rfScope})
			if other := h.backChannel(token.IntrospectionPath, "sfm", url.Values{"token": {xr.AccessToken}}, nil); other.status != http.StatusOK || other.json["active"] != false || len(other.json) != 1 {
				t.Errorf("introspection by SFM's client: %d %s, want only active false", other.status, other.body)
			}

			// prompt=none in this browser: the session answers with a
			// code until the logout, and with login_required after it.
			silent := func() url.Values {
				t.Helper()
				r := h.request("web", func(f url.Values) {
					f.Set("redirect_uri", app.URL+"/callback")
					f.Set("prompt", "none")
				})
				if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+h.authorizeURL(r, nil))); err != nil {
					t.Fatal(err)
				}
				q := app.query("/callback")
				if q.Get("state") != r.form.Get("state") || q.Get("iss") != h.URL {
					t.Fatalf("prompt=none callback query %v", q)
				}
				return q
			}
			if q := silent(); q.Get("code") == "" || q.Has("error") {
				t.Fatalf("prompt=none with the session: %v, want a code", q)
			}

			// Logout through the browser: with the ID token as hint the
			// confirmation is skipped; without (in English here), the
			// person confirms.
			end := url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {app.URL + "/logged-out"}, "state": {"bye-" + l.lang}}
			hint := l.lang != "en"
			if hint {
				end.Set("id_token_hint", idt)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/connect/endsession?"+end.Encode())); err != nil {
				t.Fatal(err)
			}
			if !hint {
				checkPage(t, ctx, l.lang, 1)
				if err := chromedp.Do(ctx,
					chromedp.Click(browsertest.ByText(l.logoutButton)),
					chromedp.WaitReady(chromedp.ID("result")),
				); err != nil {
					t.Fatal(err)
				}
			}
			if got := app.query("/logged-out").Get("state"); got != "bye-"+l.lang {
				t.Fatalf("logged-out state %q", got)
			}
			code, err := h.Store.AuthorizationCode(bg, h.Clock.Now(), store.SecretID(q.Get("code")))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Store.Session(bg, h.Clock.Now(), code.SessionID); err == nil {
				t.Fatal("the session outlived the logout")
			}
			if q := silent(); q.Get("error") != "login_required" || q.Has("code") {
				t.Fatalf("prompt=none after the logout: %v, want login_required", q)
			}
		})
	}
}

// checkClaims asserts that got has each of want's claims with its value;
// a JSON object in want must equal the claim's object exactly.
func checkClaims(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, v) {
			t.Errorf("%s %s = %v, want %v", what, k, g, v)
		}
	}
}
