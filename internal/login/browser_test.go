package login_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tillit-sts/tillit/internal/browsertest"
	"github.com/tillit-sts/tillit/internal/store"
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

// texts are what a user of each language sees, to find things by.
var browserLanguages = []struct {
	acceptLanguage, lang                     string
	pidLabel, submit, logoutButton, loggedIn string
}{
	{acceptLanguage: "nb-NO,nb;q=0.9,en;q=0.5", lang: "nb", pidLabel: "Fødselsnummer", submit: "Logg inn", logoutButton: "Logg ut"},
	{acceptLanguage: "en-US,en;q=0.9", lang: "en", pidLabel: "National identity number", submit: "Log in", logoutButton: "Log out"},
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

// TestBrowserLogin is a login as a real client makes it, in a real
// browser without JavaScript at a phone's width: PAR with DPoP by the
// client, the choice of provider and the TestIDP form in the browser, the
// code at the client's loopback callback with state and iss, the code
// redeemed for DPoP-bound tokens, and logout through the browser.
func TestBrowserLogin(t *testing.T) {
	client := newRP(t)
	h := start(t, options{postLogout: client.URL + "/logged-out"})
	for _, l := range browserLanguages {
		t.Run(l.lang, func(t *testing.T) {
			key := newDPoPKey(t)
			r := h.request("web", func(f url.Values) {
				f.Set("redirect_uri", client.URL+"/callback")
				f.Set("scope", "openid offline_access helseid://scopes/identity/pid nhn:deft/api")
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
			// number, the button.
			checkPage(t, ctx, l.lang, 5)
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(browsertest.ByLabel(l.pidLabel), pid),
				chromedp.Click(browsertest.ByText(l.submit)),
				chromedp.WaitReady(chromedp.ID("result")),
			); err != nil {
				t.Fatal(err)
			}
			q := client.query("/callback")
			if q.Get("state") != r.form.Get("state") || q.Get("iss") != h.URL || q.Get("code") == "" {
				t.Fatalf("callback query %v", q)
			}

			// The client redeems the code with its DPoP key.
			tok := h.backChannel("/connect/token", "web", url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {r.verifier},
				"redirect_uri": {r.form.Get("redirect_uri")}, "client_id": {"web"},
			}, key)
			if tok.status != http.StatusOK || tok.json["token_type"] != "DPoP" || tok.json["access_token"] == nil || tok.json["refresh_token"] == nil {
				t.Fatalf("token: %d %s", tok.status, tok.body)
			}
			// The ID token, when this build issues one.
			var hint string
			if s, ok := tok.json["id_token"].(string); ok {
				hint = s
			}

			// Logout through the browser: with the ID token as hint the
			// confirmation is skipped; without (in English here, and
			// whenever this build issues no ID token), the person confirms.
			end := url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {client.URL + "/logged-out"}, "state": {"bye-" + l.lang}}
			if l.lang == "en" {
				hint = ""
			}
			if hint != "" {
				end.Set("id_token_hint", hint)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/connect/endsession?"+end.Encode())); err != nil {
				t.Fatal(err)
			}
			if hint == "" {
				checkPage(t, ctx, l.lang, 1)
				if err := chromedp.Do(ctx,
					chromedp.Click(browsertest.ByText(l.logoutButton)),
					chromedp.WaitReady(chromedp.ID("result")),
				); err != nil {
					t.Fatal(err)
				}
			}
			if got := client.query("/logged-out").Get("state"); got != "bye-"+l.lang {
				t.Fatalf("logged-out state %q", got)
			}
			code, err := h.Store.AuthorizationCode(context.Background(), h.Clock.Now(), store.SecretID(q.Get("code")))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Store.Session(context.Background(), h.Clock.Now(), code.SessionID); err == nil {
				t.Fatal("the session outlived the logout")
			}
		})
	}
}
