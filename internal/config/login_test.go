package config

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/store"
)

// loginClient is a valid client that logs people in, added to base.
const loginClient = `  - id: web
    system: sys
    organisation: "310303038"
    grant_types: [authorization_code, refresh_token]
    scopes: [nhn:deft/api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid]
    redirect_uris: [https://app.example.org/callback, http://127.0.0.1/cb]
    post_logout_redirect_uris: [https://app.example.org/signout-callback-oidc]
    allow_loopback_any_port: true
    jwks: {"keys": [<EC-KEY>]}
delegations:
`

func loginBase() string { return strings.Replace(base, "delegations:\n", loginClient, 1) }

func TestLoginClient(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeConfig(t, loginBase(), ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Registry()
	if err != nil {
		t.Fatal(err)
	}
	var web store.Client
	for _, cl := range r.Clients {
		if cl.ID == "web" {
			web = cl
		}
	}
	if !slices.Equal(web.RedirectURIs, []string{"https://app.example.org/callback", "http://127.0.0.1/cb"}) ||
		len(web.PostLogoutRedirectURIs) != 1 || len(web.IdentityScopes) != 4 || !web.AllowLoopbackAnyPort {
		t.Errorf("web = %+v", web)
	}
	if web.AllowPlainAuthorize {
		t.Error("require_par unset: PAR must be required")
	}
	c, err = Load(writeConfig(t, strings.Replace(loginBase(), "    allow_loopback", "    require_par: false\n    allow_loopback", 1), ""))
	if err != nil {
		t.Fatal(err)
	}
	r, _ = c.Registry()
	if !slices.ContainsFunc(r.Clients, func(cl store.Client) bool { return cl.ID == "web" && cl.AllowPlainAuthorize }) {
		t.Error("require_par: false did not allow plain authorization requests")
	}
}

func TestLoginClientRules(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name     string
		old, new string
		wantErr  string
		many     bool // other problems follow from the same change
	}{
		{name: "redirect uri http to a host", old: "https://app.example.org/callback,", new: "http://app.example.org/cb,", wantErr: `clients[2].redirect_uris[0]: "http://app.example.org/cb" http is allowed only to a loopback address`},
		{name: "redirect uri relative", old: "https://app.example.org/callback,", new: "/cb,", wantErr: `clients[2].redirect_uris[0]: "/cb" must be an absolute URL with a host`},
		{name: "redirect uri with a fragment", old: "https://app.example.org/callback,", new: "https://app.example.org/cb#x,", wantErr: "must not have a fragment"},
		{name: "redirect uri with user info", old: "https://app.example.org/callback,", new: "https://u@app.example.org/cb,", wantErr: "must not carry user information"},
		{name: "redirect uri other scheme", old: "https://app.example.org/callback,", new: "javascript://x/%0aalert(1),", wantErr: "must be https"},
		{name: "redirect uri twice", old: "https://app.example.org/callback,", new: "http://127.0.0.1/cb,", wantErr: `clients[2].redirect_uris[1]: "http://127.0.0.1/cb" is listed twice`},
		{name: "no redirect uri", old: "    redirect_uris: [https://app.example.org/callback, http://127.0.0.1/cb]\n", new: "", wantErr: "clients[2].redirect_uris: the authorization_code grant needs at least one redirect URI", many: true},
		{name: "post logout uri http", old: "https://app.example.org/signout-callback-oidc", new: "http://app.example.org/signout", wantErr: "clients[2].post_logout_redirect_uris[0]"},
		{name: "identity scope unknown", old: "helseid://scopes/identity/pid]", new: "helseid://scopes/identity/shoe_size]", wantErr: `clients[2].identity_scopes[3]: "helseid://scopes/identity/shoe_size" is not one of`},
		{name: "offline access without refresh grant", old: "grant_types: [authorization_code, refresh_token]", new: "grant_types: [authorization_code]", wantErr: "clients[2].identity_scopes[2]: offline_access asks for a refresh token"},
		{name: "redirect uris without login", old: "grant_types: [authorization_code, refresh_token]", new: "grant_types: [refresh_token]", wantErr: "clients[2].redirect_uris: is set, but only clients with the authorization_code grant", many: true},
		{name: "no enabled identity provider", old: "    type: testidp\n", new: "    type: testidp\n    enabled: false\n", wantErr: "clients[2].grant_types: authorization_code needs an enabled identity provider"},
		{name: "loopback any port in production", old: "environment: test", new: "environment: production", wantErr: "allow_loopback_any_port: is allowed only with environment: test", many: true},
		{name: "loopback any port without a loopback uri", old: ", http://127.0.0.1/cb]", new: "]", wantErr: "clients[2].allow_loopback_any_port: is set, but no redirect URI is an http loopback URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := loginBase()
			if !strings.Contains(doc, tt.old) {
				t.Fatalf("base has no %q", tt.old)
			}
			doc = strings.Replace(doc, tt.old, tt.new, 1)
			_, err := Load(writeConfig(t, doc, ""))
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error:\n%v\nwant it to contain %q", err, tt.wantErr)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if !tt.many && len(errs) != 1 {
				t.Errorf("got %d problems, want 1:\n%v", len(errs), err)
			}
		})
	}
}

// TestIDTokenSignedResponseAlg: a login client may choose its ID token
// algorithm among the asymmetric ones; the choice reaches the registry
// record as written, and a client that chose nothing stays empty (RS256).
func TestIDTokenSignedResponseAlg(t *testing.T) {
	clearEnv(t)
	const allowed = "use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, or leave it out for RS256"
	tests := []struct {
		name    string
		alg     string // the YAML value; empty leaves the field out
		grants  string // replaces the login client's grant_types when set
		want    string // the registry record's value
		wantErr string
	}{
		{name: "left out", want: ""},
		{name: "RS256", alg: "RS256", want: "RS256"},
		{name: "ES256", alg: "ES256", want: "ES256"},
		{name: "PS256", alg: "PS256", want: "PS256"},
		{name: "ES512", alg: "ES512", want: "ES512"},
		{name: "HS256", alg: "HS256",
			wantErr: `clients[2].id_token_signed_response_alg: client "web" asks for ID tokens signed with "HS256" (an HMAC would be keyed with a secret the client holds, so the client could forge ID tokens): ` + allowed},
		{name: "none", alg: "none",
			wantErr: `clients[2].id_token_signed_response_alg: client "web" asks for ID tokens signed with "none" (an unsigned ID token proves nothing): ` + allowed},
		{name: "unknown", alg: "RS255",
			wantErr: `clients[2].id_token_signed_response_alg: client "web" asks for ID tokens signed with "RS255": ` + allowed},
		{name: "lower case", alg: "es256",
			wantErr: `clients[2].id_token_signed_response_alg: client "web" asks for ID tokens signed with "es256": ` + allowed},
		{name: "EdDSA", alg: "EdDSA",
			wantErr: `clients[2].id_token_signed_response_alg: client "web" asks for ID tokens signed with "EdDSA": ` + allowed},
		{name: "without login", alg: "ES256", grants: "[client_credentials]",
			wantErr: "clients[2].id_token_signed_response_alg: is set, but only clients with the authorization_code grant get ID tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := loginBase()
			if tt.alg != "" {
				doc = strings.Replace(doc, "    allow_loopback", "    id_token_signed_response_alg: "+tt.alg+"\n    allow_loopback", 1)
			}
			if tt.grants != "" {
				// A client without the login grant has none of the login
				// fields either.
				doc = strings.Replace(doc, "grant_types: [authorization_code, refresh_token]", "grant_types: "+tt.grants, 1)
				for _, f := range []string{"identity_scopes", "redirect_uris", "post_logout_redirect_uris", "allow_loopback_any_port"} {
					doc = regexp.MustCompile(`(?m)^    `+f+`:.*\n`).ReplaceAllString(doc, "")
				}
			}
			c, err := Load(writeConfig(t, doc, ""))
			if tt.wantErr != "" {
				var errs Errors
				if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error:\n%v\nwant the one problem %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Registry()
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(r.Clients, func(cl store.Client) bool { return cl.ID == "web" })
			if got := r.Clients[i].IDTokenSignedResponseAlg; got != tt.want {
				t.Fatalf("registry record has %q, want %q", got, tt.want)
			}
		})
	}
}
