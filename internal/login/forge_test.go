package login_test

import (
	"context"

	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// flip changes one character of a sealed value in its middle.
func flip(s string) string {
	i := len(s) / 2
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// The choice form, one fault per row.
func TestChoiceForgeries(t *testing.T) {
	h := start(t, options{})
	tests := []struct {
		name       string
		change     func(h *harness, f url.Values)
		advance    time.Duration
		wantStatus int
		// wantText is on the error page.
		wantText string
	}{
		{name: "valid", wantStatus: http.StatusSeeOther},
		{name: "no CSRF token", change: func(_ *harness, f url.Values) { f.Del("csrf_token") }, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "CSRF token of another transaction", change: func(h *harness, f url.Values) {
			f.Set("csrf_token", h.browser().choose(h.request("web", nil)).Get("csrf_token"))
		}, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "transaction of another login", change: func(h *harness, f url.Values) {
			other := h.browser().choose(h.request("web", nil))
			f.Set("tx", other.Get("tx"))
		}, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "CSRF token changed", change: func(_ *harness, f url.Values) { f.Set("csrf_token", flip(f.Get("csrf_token"))) }, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "transaction changed", change: func(_ *harness, f url.Values) { f.Set("tx", flip(f.Get("tx"))) }, wantStatus: http.StatusBadRequest, wantText: "has expired or does not exist"},
		{name: "transaction missing", change: func(_ *harness, f url.Values) { f.Del("tx") }, wantStatus: http.StatusBadRequest, wantText: "has expired or does not exist"},
		{name: "transaction expired", advance: 16 * time.Minute, wantStatus: http.StatusBadRequest, wantText: "has expired or does not exist"},
		{name: "unknown provider", change: func(_ *harness, f url.Values) { f.Set("idp", "evil-oidc") }, wantStatus: http.StatusBadRequest, wantText: "not offered"},
		{name: "field repeated", change: func(_ *harness, f url.Values) { f.Add("idp", "testidpnew-oidc") }, wantStatus: http.StatusBadRequest, wantText: "could not be accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			b.c.Transport = langTransport{}
			f := b.choose(h.request("web", nil))
			f.Set("idp", "testidp-oidc")
			if tt.change != nil {
				tt.change(h, f)
			}
			h.Clock.Advance(tt.advance)
			a := b.post("/login/idp", f)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.400s", a.status, tt.wantStatus, a.body)
			}
			if tt.wantText != "" && !strings.Contains(a.body, tt.wantText) {
				t.Fatalf("page does not say %q: %.600s", tt.wantText, a.body)
			}
			if tt.wantStatus != http.StatusSeeOther && a.header.Get("Location") != "" {
				t.Fatal("a refused form redirected")
			}
		})
	}
}

// langTransport asks for English pages, to read their texts.
type langTransport struct{}

func (langTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Header.Set("Accept-Language", "en")
	return http.DefaultTransport.RoundTrip(r)
}

// The TestIDP form, one fault per row.
func TestTestIDPForgeries(t *testing.T) {
	h := start(t, options{})
	tests := []struct {
		name       string
		change     func(h *harness, f url.Values)
		wantStatus int
		wantText   string
	}{
		{name: "valid", wantStatus: http.StatusSeeOther},
		{name: "no CSRF token", change: func(_ *harness, f url.Values) { f.Del("csrf_token") }, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "CSRF token of the choice form of this login", change: func(h *harness, f url.Values) {
			// The form name is part of the token.
			f.Set("csrf_token", f.Get("choice_token"))
		}, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "CSRF token changed", change: func(_ *harness, f url.Values) { f.Set("csrf_token", flip(f.Get("csrf_token"))) }, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "CSRF token of another login", change: func(h *harness, f url.Values) {
			f.Set("csrf_token", h.browser().testIDPForm(h.request("web", nil)).Get("csrf_token"))
		}, wantStatus: http.StatusForbidden, wantText: "could not be accepted"},
		{name: "transaction of the choice page", change: func(h *harness, f url.Values) {
			// Not handed to a TestIDP: it cannot skip the choice.
			f.Set("tx", h.browser().choose(h.request("web", nil)).Get("tx"))
		}, wantStatus: http.StatusBadRequest, wantText: "has expired or does not exist"},
		{name: "transaction changed", change: func(_ *harness, f url.Values) { f.Set("tx", flip(f.Get("tx"))) }, wantStatus: http.StatusBadRequest, wantText: "has expired or does not exist"},
		{name: "invalid pid", change: func(_ *harness, f url.Values) { f.Set("pid", "17056600575") }, wantStatus: http.StatusBadRequest, wantText: "check digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			b.c.Transport = langTransport{}
			f := b.testIDPForm(h.request("web", nil))
			f.Set("pid", pid)
			f.Set("security_level", "4")
			if tt.change != nil {
				f.Set("choice_token", b.choice.Get("csrf_token"))
				tt.change(h, f)
				f.Del("choice_token")
			}
			a := b.post("/login/testidp", f)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.400s", a.status, tt.wantStatus, a.body)
			}
			if tt.wantText != "" && !strings.Contains(a.body, tt.wantText) {
				t.Fatalf("page does not say %q: %.800s", tt.wantText, a.body)
			}
			if tt.wantStatus != http.StatusSeeOther && (a.header.Get("Location") != "" || b.sessionCookie() != "") {
				t.Fatal("a refused form logged in")
			}
		})
	}
}

// Provider selection at the authorization endpoint, one case per row.
func TestProviderSelection(t *testing.T) {
	one := strings.Replace(testRegistry, "  - {name: testidpnew-oidc, type: testidp, display_name: TestIDP ny}\n", "", 1)
	one = strings.Replace(one, "%s", "", 1)
	disabled := strings.Replace(testRegistry, "display_name: TestIDP ny}", "display_name: TestIDP ny, enabled: false}", 1)
	disabled = strings.Replace(disabled, "%s", "", 1)
	tests := []struct {
		name     string
		registry string
		change   func(url.Values)
		// wantPath is where the browser goes; wantError the error at
		// the client instead; wantPage the choice page.
		wantPath, wantError string
		wantPage            bool
	}{
		{name: "two providers: the choice", wantPage: true},
		{name: "idp: names one", change: func(f url.Values) { f.Set("acr_values", "idp:testidpnew-oidc") }, wantPath: "/login/testidp"},
		{name: "one provider: straight there", registry: one, wantPath: "/login/testidp"},
		{name: "the other disabled: straight there", registry: disabled, wantPath: "/login/testidp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, options{registry: tt.registry})
			a := h.browser().get(h.authorizeURL(h.request("web", tt.change), nil))
			switch {
			case tt.wantPage:
				if a.status != http.StatusOK || !strings.Contains(a.body, `value="testidp-oidc"`) || !strings.Contains(a.body, `value="testidpnew-oidc"`) {
					t.Fatalf("status %d: %.500s", a.status, a.body)
				}
			case tt.wantPath != "":
				if u := a.location(t); u.Path != tt.wantPath {
					t.Fatalf("went to %s", u)
				}
			}
		})
	}
	// A provider that is not there is refused at PAR already (acr_values),
	// never shown.
	h := start(t, options{registry: disabled})
	p := h.backChannel("/connect/par", "web", h.request("web", func(f url.Values) { f.Set("acr_values", "idp:testidpnew-oidc") }).form, nil)
	if p.status != http.StatusBadRequest || p.json["error"] != "invalid_request" {
		t.Fatalf("PAR with a disabled provider: %d %s", p.status, p.body)
	}
}

// A production configuration with a TestIDP in the store (not the file,
// which would not start): the TestIDP is never offered and its form is
// not served.
func TestTestIDPRefusedInProduction(t *testing.T) {
	reg := strings.Replace(testRegistry, "%s", "", 1)
	reg = reg[:strings.Index(reg, "identity_providers:")] + "identity_providers:\n  - {name: idporten-oidc, type: oidc, display_name: ID-porten}\n"
	reg = strings.ReplaceAll(reg, "    allow_loopback_any_port: true\n", "")
	reg = strings.ReplaceAll(reg, ", http://127.0.0.1/callback", "")
	h := start(t, options{registry: reg, settings: "environment: production"})
	ctx := t.Context()
	if _, err := storeCreateTestIDP(ctx, h); err != nil {
		t.Fatal(err)
	}
	r := h.request("web", func(f url.Values) { f.Set("acr_values", "idp:testidp-oidc") })
	u := h.browser().get(h.authorizeURL(r, nil)).location(t)
	if u.Host != "web.example" || u.Query().Get("error") != "invalid_request" || !strings.Contains(u.Query().Get("error_description"), "not offered here") {
		t.Fatalf("redirect %s", u)
	}
	// Without acr_values: no provider at all.
	u = h.browser().get(h.authorizeURL(h.request("web", nil), nil)).location(t)
	if u.Query().Get("error") != "temporarily_unavailable" {
		t.Fatalf("redirect %s", u)
	}
	if a := h.browser().get("/login/testidp"); a.status != http.StatusNotFound {
		t.Fatalf("TestIDP form: status %d", a.status)
	}
}

// Login attempts from one address are limited; the refusals are counted
// in the aggregate, not audited one by one.
func TestAttemptsLimited(t *testing.T) {
	h := start(t, options{settings: "rate_limit:\n  login_per_minute: 3"})
	b := h.browser()
	b.c.Transport = langTransport{}
	for i := range 3 {
		if a := b.get(h.authorizeURL(h.request("web", nil), nil)); a.status != http.StatusOK {
			t.Fatalf("attempt %d: %d", i, a.status)
		}
	}
	a := b.get(h.authorizeURL(h.request("web", nil), nil))
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "too many login attempts") {
		t.Fatalf("status %d: %.400s", a.status, a.body)
	}
	h.Clock.Advance(time.Minute)
	if a := b.get(h.authorizeURL(h.request("web", nil), nil)); a.status != http.StatusOK {
		t.Fatalf("after a minute: %d", a.status)
	}
	if err := h.Srv.WriteRefusals(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, err := h.Store.AuditRecords(t.Context(), storeAuditFilter())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Outcome == audit.OutcomeRefusedAggregate && strings.Contains(r.Details, `"endpoint":"login"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no aggregate with the login refusal in %d records", len(recs))
	}
}

// storeCreateTestIDP adds a TestIDP to the store, as the CLI would,
// and has the server see it at once.
func storeCreateTestIDP(ctx context.Context, h *harness) (store.IdentityProvider, error) {
	p, err := store.Create(ctx, h.Store, store.IdentityProviderKind, store.IdentityProvider{
		Name: "testidp-oidc", Type: store.IdentityProviderTestIdP, DisplayName: "TestIDP", Status: store.StatusActive})
	if err != nil {
		return p, err
	}
	_, err = h.Srv.Registry().Refresh(ctx)
	return p, err
}

func storeAuditFilter() store.AuditFilter {
	return store.AuditFilter{Outcome: audit.OutcomeRefusedAggregate}
}
