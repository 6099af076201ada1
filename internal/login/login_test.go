package login_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/store"
)

// payload is a JWT's claims, unverified.
func payload(t *testing.T, jwt string) map[string]any { return jwttest.Claims(t, jwt) }

// TestLoginThroughThePages is a whole login without JavaScript: the
// choice of provider, the TestIDP form, the code at the client with state
// and iss, the person completed from the registers, and a session.
func TestLoginThroughThePages(t *testing.T) {
	h := start(t, options{})
	b := h.browser()
	r := h.request("web", nil)
	u := b.login(r, pid, "4")
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://web.example/callback" {
		t.Fatalf("redirected to %s", got)
	}
	if u.Query().Get("state") != r.form.Get("state") || u.Query().Get("iss") != h.URL {
		t.Fatalf("redirect query %v", u.Query())
	}
	c := h.code(u)
	who := c.Login
	if who.PID != pid || who.SecurityLevel != "4" || who.IdP != "testidp-oidc" || who.HPRNumber != hpr || len(who.Subject) != 44 {
		t.Errorf("login %+v", who)
	}
	if c.SessionID == "" || c.Nonce != r.form.Get("nonce") {
		t.Errorf("code session %q nonce %q", c.SessionID, c.Nonce)
	}
	s, err := h.Store.Session(context.Background(), h.Clock.Now(), store.SecretID(b.sessionCookie()))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != c.SessionID || s.Login.PID != pid || len(s.Clients) != 1 || s.Clients[0] != "web" {
		t.Errorf("session %+v", s)
	}

	// The ID token names the person from the registers and the session
	// by its sid, which end-session matches.
	key := newDPoPKey(t)
	r = h.request("web", func(f url.Values) {
		f.Set("scope", "openid profile helseid://scopes/hpr/hpr_number nhn:deft/api")
	})
	b2 := h.browser()
	f := b2.testIDPFormAt(h.authorizeURL(r, key))
	f.Set("pid", pid)
	f.Set("security_level", "4")
	u = b2.post("/login/testidp", f).location(t)
	tok := h.backChannel("/connect/token", "web", url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"code_verifier": {r.verifier}, "redirect_uri": {r.form.Get("redirect_uri")}, "client_id": {"web"}}, key)
	idt, _ := tok.json["id_token"].(string)
	if tok.status != http.StatusOK || idt == "" {
		t.Fatalf("token: %d %s", tok.status, tok.body)
	}
	claims := payload(t, idt)
	c = h.code(u)
	if claims["given_name"] != "Kari" || claims["family_name"] != "Nordmann" || claims["helseid://claims/hpr/hpr_number"] != hpr ||
		claims["sid"] != idtoken.SID(c.SessionID) || claims["sub"] != c.Login.Subject {
		t.Errorf("ID token claims %v", claims)
	}

	// Someone the registers do not know logs in without names or HPR
	// number.
	u = h.browser().login(h.request("web", nil), otherPID, "3")
	if who := h.code(u).Login; who.HPRNumber != "" || who.SecurityLevel != "3" {
		t.Errorf("unknown person %+v", who)
	}
}

// The client's test_* parameters log in without the form; acr_values
// with idp: skips the choice.
func TestAutomation(t *testing.T) {
	h := start(t, options{})
	r := h.request("web", func(f url.Values) {
		f.Set("acr_values", "idp:testidp-oidc")
		f.Set("test_pid", pid)
		f.Set("test_security_level", "3")
	})
	b := h.browser()
	u := b.get(h.authorizeURL(r, nil)).location(t)
	if u.Path != "/login/testidp" {
		t.Fatalf("went to %s, want the TestIDP", u)
	}
	u = b.get(u.String()).location(t)
	if who := h.code(u).Login; who.PID != pid || who.SecurityLevel != "3" {
		t.Fatalf("login %+v", who)
	}
}

// The cookie: HttpOnly, SameSite=Lax, Path=/, not Secure only because the
// issuer is plain http on loopback, no expiry; a new id at every login.
func TestSessionCookie(t *testing.T) {
	h := start(t, options{})
	b := h.browser()
	f := b.testIDPForm(h.request("web", nil))
	f.Set("pid", pid)
	f.Set("security_level", "4")
	a := b.post("/login/testidp", f)
	cookies := (&http.Response{Header: a.header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", a.header["Set-Cookie"])
	}
	c := cookies[0]
	if c.Name != "tillit-session" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
		c.Secure || c.MaxAge != 0 || !c.Expires.IsZero() || c.Domain != "" || len(c.Value) != 43 {
		t.Fatalf("cookie %q", a.header.Get("Set-Cookie"))
	}
}

// Session fixation: a session id planted in the browser before the login,
// or the one of an earlier login, never names the new login.
func TestSessionFixation(t *testing.T) {
	h := start(t, options{})
	ctx := context.Background()
	b := h.browser()
	base, _ := url.Parse(h.URL)
	planted := "planted-by-an-attacker-0123456789abcdefghij"
	b.jar.SetCookies(base, []*http.Cookie{{Name: "tillit-session", Value: planted, Path: "/"}})
	b.login(h.request("web", nil), pid, "4")
	first := b.sessionCookie()
	if first == planted || first == "" {
		t.Fatalf("the planted id %q was kept", first)
	}
	// Logging in again (prompt=login) gives a new id and ends the old
	// session.
	b.login(h.request("web", func(f url.Values) { f.Set("prompt", "login") }), pid, "4")
	second := b.sessionCookie()
	if second == first || second == "" {
		t.Fatal("the id did not change at the second login")
	}
	if _, err := h.Store.Session(ctx, h.Clock.Now(), store.SecretID(first)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the first session lives on: %v", err)
	}
	if _, err := h.Store.Session(ctx, h.Clock.Now(), store.SecretID(second)); err != nil {
		t.Fatal(err)
	}
}

// A session answers later requests: prompt=none, max_age, the security
// level and the provider asked for decide whether it may.
func TestSessionReuse(t *testing.T) {
	h := start(t, options{})
	loggedIn := h.browser()
	loggedIn.login(h.request("web", nil), pid, "3")
	sid := store.SecretID(loggedIn.sessionCookie())

	tests := []struct {
		name string
		// fresh is a browser without a session.
		fresh   bool
		change  func(url.Values)
		advance time.Duration
		// wantError is the error at the client; "" with wantCode is a
		// code, else a page (wantPage).
		wantError string
		wantCode  bool
		wantPage  bool
	}{
		{name: "session, no prompt", wantCode: true},
		{name: "session, prompt=none", change: func(f url.Values) { f.Set("prompt", "none") }, wantCode: true},
		{name: "no session, prompt=none", fresh: true, change: func(f url.Values) { f.Set("prompt", "none") }, wantError: "login_required"},
		{name: "no session", fresh: true, wantPage: true},
		{name: "prompt=login", change: func(f url.Values) { f.Set("prompt", "login") }, wantPage: true},
		{name: "max_age=0", change: func(f url.Values) { f.Set("max_age", "0"); f.Set("prompt", "none") }, advance: time.Second, wantError: "login_required"},
		{name: "older than max_age", change: func(f url.Values) { f.Set("max_age", "60") }, advance: 2 * time.Minute, wantPage: true},
		{name: "within max_age", change: func(f url.Values) { f.Set("max_age", "3600"); f.Set("prompt", "none") }, wantCode: true},
		{name: "Level4 asked, session at 3", change: func(f url.Values) { f.Set("acr_values", "Level4"); f.Set("prompt", "none") }, wantError: "login_required"},
		{name: "another provider asked", change: func(f url.Values) { f.Set("acr_values", "idp:testidpnew-oidc"); f.Set("prompt", "none") }, wantError: "login_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := loggedIn
			if tt.fresh {
				b = h.browser()
			}
			h.Clock.Advance(tt.advance)
			a := b.get(h.authorizeURL(h.request("other", tt.change), nil))
			switch {
			case tt.wantPage:
				if a.status != http.StatusOK || !strings.Contains(a.body, `name="idp"`) {
					t.Fatalf("status %d, want the choice page: %.300s", a.status, a.body)
				}
			case tt.wantCode:
				c := h.code(a.location(t))
				if c.SessionID != sid || c.Login.PID != pid || c.ClientID != "other" {
					t.Fatalf("code %+v", c)
				}
			default:
				u := a.location(t)
				if u.Host != "other.example" || u.Query().Get("error") != tt.wantError {
					t.Fatalf("redirect %s, want error %s", u, tt.wantError)
				}
			}
		})
	}
	s, err := h.Store.Session(context.Background(), h.Clock.Now(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Clients) != 2 || s.Clients[1] != "other" {
		t.Errorf("session clients %v", s.Clients)
	}
}

// Level4 asked for and a level-3 login at the TestIDP: access_denied.
func TestLevel4Required(t *testing.T) {
	h := start(t, options{})
	u := h.browser().login(h.request("web", func(f url.Values) { f.Set("acr_values", "Level4") }), pid, "3")
	if u.Query().Get("error") != "access_denied" || !strings.Contains(u.Query().Get("error_description"), "level 4") {
		t.Fatalf("redirect %s", u)
	}
}
