package token_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// productionRegistry is loginRegistry for environment: production: an
// upstream provider (which no test here reaches) instead of the TestIDP.
// The person register still knows loginPID, as a production register may.
var productionRegistry = strings.Replace(loginRegistry,
	"  - {name: testidp-oidc, type: testidp, display_name: TestIDP}\n",
	"  - {name: idporten, type: oidc, issuer: \"https://test.idporten.no\", client_id: tillit, auth: private_key_jwt}\n", 1)

// TestLoginNames: the names an identity provider gave reach the ID token
// and userinfo (also for a refreshed access token), and never the access
// token in clear; a login without names gets the person register's only
// in a test environment.
func TestLoginNames(t *testing.T) {
	test := startLogin(t)
	production := start(t, servertest.Options{Registry: productionRegistry, Settings: "environment: production"})
	kari := store.Names{Given: "Kari", Middle: "Mari", Family: "Nordmann"}
	profile := []string{"openid", "profile", scopePID, "offline_access", scopeSFM, "test:bearer/read"}
	absent := "(absent)"
	tests := []struct {
		name   string
		h      *harness
		names  store.Names
		scopes []string
		// want are the name claims of the ID token and of userinfo.
		want map[string]string
	}{
		{name: "test, names from the provider", h: test, names: kari, scopes: profile,
			want: map[string]string{"name": "Kari Mari Nordmann", "given_name": "Kari", "middle_name": "Mari", "family_name": "Nordmann"}},
		{name: "test, no names: the register's", h: test, scopes: profile,
			want: map[string]string{"name": "KVART GREVLING", "given_name": "KVART", "middle_name": "", "family_name": "GREVLING"}},
		{name: "production, names from the provider", h: production, names: kari, scopes: profile,
			want: map[string]string{"name": "Kari Mari Nordmann", "given_name": "Kari", "middle_name": "Mari", "family_name": "Nordmann"}},
		{name: "production, no names: none, though the register has the pid", h: production, scopes: profile,
			want: map[string]string{"name": absent, "given_name": absent, "family_name": absent}},
		{name: "production, the whole name only", h: production, names: store.Names{Full: "Kari Nordmann"}, scopes: profile,
			want: map[string]string{"name": "Kari Nordmann", "given_name": "", "family_name": ""}},
		{name: "production, names without the profile scope", h: production, names: kari,
			scopes: []string{"openid", scopePID, "offline_access", scopeSFM, "test:bearer/read"},
			want:   map[string]string{"name": absent, "given_name": absent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			h.t = t
			l := testLogin(loginPID)
			l.IdP, l.Names = "idporten", tt.names
			code, verifier := h.loginCode(l, tt.scopes, nil)
			key := newP256(t)
			r := h.do(call{client: "web", form: func(f url.Values) {
				redeemForm(code, verifier)(f)
				f.Set("resource", "e-helse:sfm.api")
			}, dpopKey: key})
			if r.status != 200 {
				t.Fatalf("redeem: %d %v", r.status, r.body)
			}
			at := r.body["access_token"].(string)
			check := func(what string, got map[string]any) {
				t.Helper()
				for k, v := range tt.want {
					g, ok := got[k]
					switch {
					case v == absent && ok:
						t.Errorf("%s has %s = %v, want none", what, k, g)
					case v != absent && g != v:
						t.Errorf("%s %s = %v, want %q", what, k, g, v)
					}
				}
			}
			check("ID token", h.verifyIDToken(r.body["id_token"].(string)))
			ac := claims(t, at)
			for _, k := range []string{"name", "given_name", "middle_name", "family_name"} {
				if _, ok := ac[k]; ok {
					t.Errorf("access token has %s", k)
				}
			}
			sealed, _ := ac["tillit_names"].(string)
			if (sealed != "") != (tt.names != store.Names{} && len(tt.scopes) == len(profile)) {
				t.Errorf("access token tillit_names %q for names %+v and scopes %v", sealed, tt.names, tt.scopes)
			}
			if strings.Contains(at, "Kari") || strings.Contains(sealed, "Kari") {
				t.Error("the access token has the names in clear")
			}
			ui := h.userinfo(userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, nil)}})
			if ui.status != 200 {
				t.Fatalf("userinfo: %d %v", ui.status, ui.body)
			}
			check("userinfo", ui.body)

			// A refreshed access token speaks for the same login.
			h.Clock.Advance(time.Second)
			rr := h.do(call{client: "web", form: func(f url.Values) {
				f.Set("grant_type", "refresh_token")
				f.Set("refresh_token", r.body["refresh_token"].(string))
				f.Set("resource", "test:bearer")
			}, dpopKey: key})
			if rr.status != 200 {
				t.Fatalf("refresh: %d %v", rr.status, rr.body)
			}
			rt := rr.body["access_token"].(string)
			ui = h.userinfo(userinfoCall{authz: []string{"DPoP " + rt}, proofs: []string{h.userinfoProof(key, rt, nil)}})
			if ui.status != 200 {
				t.Fatalf("userinfo with the refreshed token: %d %v", ui.status, ui.body)
			}
			check("userinfo of the refreshed token", ui.body)
		})
	}

	// The sealed names are bound to the person: copied into a token about
	// someone else, they do not open, and userinfo answers a bare error
	// rather than a stranger's names.
	production.t = t
	l := testLogin(loginPID)
	l.IdP, l.Names = "idporten", kari
	code, verifier := production.loginCode(l, profile, nil)
	key := newP256(t)
	r := production.do(call{client: "web", form: func(f url.Values) {
		redeemForm(code, verifier)(f)
		f.Set("resource", "e-helse:sfm.api")
	}, dpopKey: key})
	if r.status != 200 {
		t.Fatalf("redeem: %d %v", r.status, r.body)
	}
	moved := production.mint(with(claims(t, r.body["access_token"].(string)), func(c map[string]any) {
		c["sub"] = production.sub(unknownPID)
		c[claimPID] = unknownPID
	}))
	ui := production.userinfo(userinfoCall{authz: []string{"DPoP " + moved}, proofs: []string{production.userinfoProof(key, moved, nil)}})
	if ui.status != 500 || ui.body["given_name"] != nil {
		t.Fatalf("userinfo with names sealed for another person: %d %v, want a bare 500", ui.status, ui.body)
	}
}
