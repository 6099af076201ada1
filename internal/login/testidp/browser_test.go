package testidp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tillit-sts/tillit/internal/browsertest"
	"github.com/tillit-sts/tillit/internal/login/csrf"
	"github.com/tillit-sts/tillit/internal/login/page"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// texts are what a user of each language sees, to find things by.
type texts struct {
	acceptLanguage                     string
	lang                               page.Lang
	pidLabel, level3, hprLabel, submit string
	checksumError, logoutButton        string
}

var languages = []texts{
	{
		acceptLanguage: "nb-NO,nb;q=0.9,en;q=0.5", lang: page.Norwegian,
		pidLabel: "Fødselsnummer", level3: "Nivå 3 (betydelig)", hprLabel: "HPR-nummer (valgfritt)", submit: "Logg inn",
		checksumError: "kontrollsifrene stemmer ikke", logoutButton: "Logg ut",
	},
	{
		acceptLanguage: "en-US,en;q=0.9", lang: page.English,
		pidLabel: "National identity number", level3: "Level 3 (substantial)", hprLabel: "HPR number (optional)", submit: "Log in",
		checksumError: "its check digits do not match", logoutButton: "Log out",
	},
}

// loginServers starts the login side (IdP choice, TestIDP, logout and
// error pages) and a client on another origin that the TestIDP redirects
// to. The client's origin is on the form's CSP form-action list; Chromium
// enforces form-action on the redirect after the post, so a wrong policy
// fails this test.
func loginServers(t *testing.T) (login *httptest.Server, f *fakeLogin) {
	t.Helper()
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>client</title><p id="result">logged in as %s</p>`, r.URL.Query().Get("pid"))
	}))
	t.Cleanup(client.Close)

	h, f := newHandler(t)
	f.txs["tx-1"].RedirectOrigins = []string{client.URL}
	mux := http.NewServeMux()
	page.Mount(mux)
	h.Mount(mux)
	mux.HandleFunc("GET /choose", func(w http.ResponseWriter, r *http.Request) {
		p := &page.ChooseIDP{
			Form:       page.Form{Action: "/choose", CSRF: h.CSRF.Token("tx-1", "idp"), Hidden: []page.Field{{Name: "tx", Value: "tx-1"}}},
			ClientName: "Journalsystemet",
			Providers:  []page.Provider{{Name: "idporten-oidc", DisplayName: "ID-porten"}, {Name: DefaultName, DisplayName: "TestIDP"}},
		}
		if err := page.Render(w, http.StatusOK, page.Negotiate("", r), p); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("POST /choose", func(w http.ResponseWriter, r *http.Request) {
		if err := h.CSRF.Check(r.PostFormValue("tx"), "idp", r.PostFormValue(csrf.FieldName)); err != nil {
			t.Errorf("IdP choice: %v", err)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if r.PostFormValue("idp") != DefaultName {
			t.Errorf("chose %q", r.PostFormValue("idp"))
		}
		http.Redirect(w, r, DefaultPath+"?tx="+r.PostFormValue("tx"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		p := &page.Logout{Form: page.Form{Action: "/logout", CSRF: h.CSRF.Token("session-1", "logout")}, ClientName: "Journalsystemet"}
		if err := page.Render(w, http.StatusOK, page.Negotiate("", r), p, client.URL); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		p := &page.Error{
			Kind: page.ErrorRequest, Reference: "0123456789abcdef0123456789abcdef",
			// No spaces: the page must wrap it rather than scroll.
			Detail:    "redirect_uri=https://client.example/a/very/long/path/that/goes/on/and/on/without/any/space/at/all/callback?x=1",
			ReturnURL: client.URL,
		}
		if err := page.Render(w, http.StatusBadRequest, page.Negotiate("", r), p); err != nil {
			t.Error(err)
		}
	})
	login = httptest.NewServer(mux)
	t.Cleanup(login.Close)
	return login, f
}

// checkPage asserts what every login page must be in a browser: in the
// right language, no sideways scrolling at 375 px, and a non-empty
// accessible name on every control.
func checkPage(t *testing.T, ctx context.Context, lang page.Lang, wantControls int) []browsertest.Control {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || got != string(lang) {
		t.Errorf("lang %q, %v, want %q", got, err, lang)
	}
	if w, err := browsertest.ScrollWidth(ctx); err != nil || w > 375 {
		t.Errorf("scroll width %d, %v: the page scrolls sideways at 375 px", w, err)
	}
	// The stylesheet loaded (CSP style-src 'self'): buttons span the column.
	if bw, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(document.querySelector("button") || document.body).getBoundingClientRect().width`)); err != nil || bw < 250 {
		t.Errorf("button width %v, %v: the stylesheet did not apply", bw, err)
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
	return controls
}

func TestLoginInBrowser(t *testing.T) {
	login, f := loginServers(t)
	for _, l := range languages {
		t.Run(string(l.lang), func(t *testing.T) {
			ctx := browsertest.Tab(t, browsertest.Options{AcceptLanguage: l.acceptLanguage})
			before := len(f.persons())

			// Choose the TestIDP.
			if err := chromedp.Do(ctx, chromedp.Navigate(login.URL+"/choose")); err != nil {
				t.Fatal(err)
			}
			checkPage(t, ctx, l.lang, 2)
			if err := chromedp.Do(ctx,
				chromedp.Click(browsertest.ByText("TestIDP")),
				chromedp.WaitReady(browsertest.ByLabel(l.pidLabel)),
			); err != nil {
				t.Fatal(err)
			}

			// The form: a pid with a wrong check digit is refused with
			// the error tied to the field.
			checkPage(t, ctx, l.lang, 5)
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(browsertest.ByLabel(l.pidLabel), "17056600575"),
				chromedp.Click(browsertest.ByText(l.submit)),
				chromedp.WaitReady(chromedp.ID("pid-error")),
			); err != nil {
				t.Fatal(err)
			}
			controls := checkPage(t, ctx, l.lang, 6) // plus the summary's link
			var pid *browsertest.Control
			for i := range controls {
				if controls[i].Role == "textbox" && controls[i].Name == l.pidLabel {
					pid = &controls[i]
				}
			}
			if pid == nil || !strings.Contains(pid.Description, l.checksumError) {
				t.Fatalf("the pid field's description %+v does not carry the error %q", pid, l.checksumError)
			}

			// Correct it, choose level 3, give an HPR number, log in.
			if err := chromedp.Do(ctx,
				chromedp.Clear(browsertest.ByLabel(l.pidLabel)),
				chromedp.SendKeys(browsertest.ByLabel(l.pidLabel), "17056600574"),
				chromedp.Click(browsertest.ByLabel(l.level3)),
				chromedp.SendKeys(browsertest.ByLabel(l.hprLabel), "431001110"),
				chromedp.Click(browsertest.ByText(l.submit)),
				chromedp.WaitReady(chromedp.ID("result")),
			); err != nil {
				t.Fatal(err)
			}
			result, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
			if err != nil || result != "logged in as 17056600574" {
				t.Fatalf("result %q, %v", result, err)
			}
			got := f.persons()
			if len(got) != before+1 {
				t.Fatalf("%d logins, want %d", len(got), before+1)
			}
			if p := got[len(got)-1]; p.PID != "17056600574" || p.SecurityLevel != 3 || p.HPRNumber != "431001110" {
				t.Fatalf("person %+v", p)
			}
		})
	}
}

// The logout and error pages pass the same checks.
func TestOtherPagesInBrowser(t *testing.T) {
	login, _ := loginServers(t)
	for _, l := range languages {
		t.Run(string(l.lang), func(t *testing.T) {
			ctx := browsertest.Tab(t, browsertest.Options{AcceptLanguage: l.acceptLanguage})
			if err := chromedp.Do(ctx, chromedp.Navigate(login.URL+"/logout")); err != nil {
				t.Fatal(err)
			}
			if c := checkPage(t, ctx, l.lang, 1); len(c) == 1 && c[0].Name != l.logoutButton {
				t.Errorf("logout button %q, want %q", c[0].Name, l.logoutButton)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(login.URL+"/error")); err != nil {
				t.Fatal(err)
			}
			checkPage(t, ctx, l.lang, 1) // the link back
		})
	}
}
