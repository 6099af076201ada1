package login_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/store"
)

const (
	postLogout      = "https://web.example/signout-callback-oidc"
	otherPostLogout = "https://other.example/signout-callback-oidc"
)

// End-session, one case per row: every way to ask for a redirect the
// client did not register ends on a page, and only a hint this server
// issued for the browser's session skips the confirmation.
func TestEndSession(t *testing.T) {
	h := start(t, options{})
	type session struct {
		b            *browser
		sub, sid, id string
	}
	tests := []struct {
		name string
		// noSession: the browser has none.
		noSession bool
		query     func(h *harness, s session) url.Values
		// wantStatus 303 redirects to wantRedirect; 200 with wantConfirm
		// is the confirmation page, else the logged-out page.
		wantStatus   int
		wantRedirect string
		wantConfirm  bool
		// wantEnded: the session is gone.
		wantEnded bool
	}{
		{name: "hint of the session, registered URI", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "post_logout_redirect_uri": {postLogout}, "state": {"s-1"}}
		}, wantStatus: http.StatusSeeOther, wantRedirect: postLogout + "?state=s-1", wantEnded: true},
		{name: "hint of the session, no URI", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}}
		}, wantStatus: http.StatusOK, wantEnded: true},
		{name: "hint with the person's sub, no sid", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, "", nil)}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusSeeOther, wantRedirect: postLogout, wantEnded: true},
		{name: "expired hint is accepted", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, func(c map[string]any) {
				c["exp"] = h.Clock.Now().Add(-24 * time.Hour).Unix()
			})}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusSeeOther, wantRedirect: postLogout, wantEnded: true},
		{name: "no hint: confirmation", query: func(h *harness, s session) url.Values {
			return url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusOK, wantConfirm: true},
		{name: "hint of a client not in the session: confirmation", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("other", s.sub, s.sid, nil)}}
		}, wantStatus: http.StatusOK, wantConfirm: true},
		{name: "hint of another person and session: confirmation", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", "someone-else", "another-session", nil)}}
		}, wantStatus: http.StatusOK, wantConfirm: true},
		{name: "no session, hint, registered URI", noSession: true, query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", "x", "y", nil)}, "post_logout_redirect_uri": {postLogout}, "state": {"s-2"}}
		}, wantStatus: http.StatusSeeOther, wantRedirect: postLogout + "?state=s-2"},

		// Open redirect attempts: logged out, on a page.
		{name: "unregistered URI", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "post_logout_redirect_uri": {"https://evil.example/"}}
		}, wantStatus: http.StatusOK, wantEnded: true},
		{name: "registered URI with a query added", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "post_logout_redirect_uri": {postLogout + "?next=https://evil.example/"}}
		}, wantStatus: http.StatusOK, wantEnded: true},
		{name: "registered URI with another port", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "post_logout_redirect_uri": {"https://web.example:8443/signout-callback-oidc"}}
		}, wantStatus: http.StatusOK, wantEnded: true},
		{name: "another client's URI", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "post_logout_redirect_uri": {otherPostLogout}}
		}, wantStatus: http.StatusOK, wantEnded: true},
		{name: "registered URI without hint or client", noSession: true, query: func(h *harness, s session) url.Values {
			return url.Values{"post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusOK},
		{name: "javascript URI", noSession: true, query: func(h *harness, s session) url.Values {
			return url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"javascript:alert(1)"}}
		}, wantStatus: http.StatusOK},

		// Hints this server did not issue: an error page, nothing ended.
		{name: "hint signed by another key", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.foreignIDToken("web", s.sub)}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusBadRequest},
		{name: "hint alg none", query: func(h *harness, s session) url.Values {
			tok := h.idToken("web", s.sub, s.sid, nil)
			parts := strings.Split(tok, ".")
			return url.Values{"id_token_hint": {jwttest.Segment(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusBadRequest},
		{name: "hint of another issuer", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, func(c map[string]any) { c["iss"] = "https://evil.example" })}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusBadRequest},
		{name: "access token as hint", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.accessTokenHint("web", s.sub, s.sid)}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusBadRequest},
		{name: "hint for two audiences without azp", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, func(c map[string]any) { c["aud"] = []string{"web", "other"} })}, "post_logout_redirect_uri": {postLogout}}
		}, wantStatus: http.StatusBadRequest},
		{name: "client_id is not the hint's client", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "client_id": {"other"}, "post_logout_redirect_uri": {otherPostLogout}}
		}, wantStatus: http.StatusBadRequest},
		{name: "parameter repeated", query: func(h *harness, s session) url.Values {
			return url.Values{"id_token_hint": {h.idToken("web", s.sub, s.sid, nil)}, "post_logout_redirect_uri": {postLogout, "https://evil.example/"}}
		}, wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			var s session
			if !tt.noSession {
				c := h.code(b.login(h.request("web", nil), pid, "4"))
				s = session{b: b, sub: c.Login.Subject, sid: idtoken.SID(c.SessionID), id: c.SessionID}
			}
			a := b.get("/connect/endsession?" + tt.query(h, s).Encode())
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.500s", a.status, tt.wantStatus, a.body)
			}
			if loc := a.header.Get("Location"); loc != tt.wantRedirect {
				t.Fatalf("Location %q, want %q", loc, tt.wantRedirect)
			}
			if tt.wantStatus == http.StatusOK {
				confirm := strings.Contains(a.body, `name="csrf_token"`)
				if confirm != tt.wantConfirm {
					t.Fatalf("confirmation page %v, want %v: %.500s", confirm, tt.wantConfirm, a.body)
				}
			}
			if tt.noSession {
				return
			}
			_, err := h.Store.Session(context.Background(), h.Clock.Now(), s.id)
			if ended := errors.Is(err, store.ErrNotFound); ended != tt.wantEnded {
				t.Fatalf("session ended %v, want %v (%v)", ended, tt.wantEnded, err)
			}
			if tt.wantEnded {
				cleared := false
				for _, c := range (&http.Response{Header: a.header}).Cookies() {
					cleared = cleared || (c.Name == "tillit-session" && c.MaxAge < 0)
				}
				if !cleared || b.sessionCookie() != "" {
					t.Fatal("the cookie was not cleared")
				}
			}
		})
	}
}

// The confirmation form: with its CSRF token it ends the session and
// goes to the registered URI; a forged one ends nothing.
func TestEndSessionConfirmation(t *testing.T) {
	h := start(t, options{})
	tests := []struct {
		name       string
		change     func(f url.Values)
		wantStatus int
		// wantLocation is the redirect; wantEnded: the session is gone.
		wantLocation string
		wantEnded    bool
	}{
		{name: "valid", wantStatus: http.StatusSeeOther, wantLocation: postLogout + "?state=s-3", wantEnded: true},
		// Without a token it is a plain RP-initiated request: asked again.
		{name: "no CSRF token", change: func(f url.Values) { f.Del("csrf_token") }, wantStatus: http.StatusOK},
		{name: "CSRF token changed", change: func(f url.Values) { f.Set("csrf_token", flip(f.Get("csrf_token"))) }, wantStatus: http.StatusForbidden},
		{name: "CSRF token of another session", change: func(f url.Values) {
			other := h.browser()
			other.login(h.request("web", nil), pid, "4")
			f.Set("csrf_token", formOf(t, other.get("/connect/endsession?client_id=web")).Get("csrf_token"))
		}, wantStatus: http.StatusForbidden},
		// Logged out, as confirmed, on a page: never sent to a URI the
		// client did not register.
		{name: "redirect URI swapped for another client's", change: func(f url.Values) {
			f.Set("post_logout_redirect_uri", otherPostLogout)
		}, wantStatus: http.StatusOK, wantEnded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			c := h.code(b.login(h.request("web", nil), pid, "4"))
			a := b.get("/connect/endsession?" + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {postLogout}, "state": {"s-3"}}.Encode())
			f := formOf(t, a)
			for _, name := range []string{"client_id", "post_logout_redirect_uri", "state"} {
				if !strings.Contains(a.body, `name="`+name+`"`) {
					t.Fatalf("the form does not carry %s", name)
				}
			}
			f.Set("client_id", "web")
			f.Set("post_logout_redirect_uri", postLogout)
			f.Set("state", "s-3")
			if tt.change != nil {
				tt.change(f)
			}
			a = b.post("/connect/endsession", f)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.400s", a.status, tt.wantStatus, a.body)
			}
			_, err := h.Store.Session(context.Background(), h.Clock.Now(), c.SessionID)
			ended := errors.Is(err, store.ErrNotFound)
			if a.header.Get("Location") != tt.wantLocation || ended != tt.wantEnded {
				t.Fatalf("Location %q, ended %v; want %q, %v", a.header.Get("Location"), ended, tt.wantLocation, tt.wantEnded)
			}
		})
	}
	// The logout is audited: who, which client.
	recs, err := h.Store.AuditRecords(context.Background(), store.AuditFilter{Outcome: audit.OutcomeRevoked})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Endpoint == "endsession" && r.ClientID == "web" && len(r.Subject) == 44 {
			n++
		}
	}
	if n != 2 {
		b, _ := json.Marshal(recs)
		t.Fatalf("%d logout records: %s", n, b)
	}
}

// accessTokenHint is a token signed by the server's key as an access
// token (typ at+jwt) with an ID token's claims.
func (h *harness) accessTokenHint(client, sub, sid string) string {
	h.t.Helper()
	now := h.Clock.Now()
	b, _ := json.Marshal(map[string]any{"iss": h.URL, "sub": sub, "aud": client, "sid": sid, "exp": now.Add(time.Minute).Unix()})
	s, err := h.Srv.Keys().Signer()
	if err != nil {
		h.t.Fatal(err)
	}
	tok, err := s.Sign(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}
