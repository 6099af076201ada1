package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// loginRegistry has a client that logs people in on a loopback redirect
// URI with any port, and a TestIDP.
const loginRegistry = `
apis:
  - {audience: nhn:deft, name: DEFT, scopes: [nhn:deft/api]}
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
client_systems:
  - {id: sys, name: Test EPJ, supplier: "310900028"}
clients:
  - id: web
    name: Web app
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code, refresh_token]
    scopes: [nhn:deft/api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid, helseid://scopes/identity/security_level, helseid://scopes/hpr/hpr_number]
    redirect_uris: [http://127.0.0.1/callback]
    allow_loopback_any_port: true
    jwks: {{jwks "web" "ES256"}}
identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: TestIDP}
persons:
  - {pid: "17056600574", given_name: Kari, family_name: Nordmann}
`

// tillit login --test-pid logs the person in at a real server without a
// browser, through its own redirect listener, and prints a token that
// carries the person.
func TestLoginAgainstServer(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{Registry: loginRegistry, Algorithm: "ES256",
		Clock: servertest.NewClock(time.Now()), Settings: "environment: test\n"})
	key := filepath.Join(t.TempDir(), "web.jwk")
	if err := keyfile.WritePrivate(key, srv.Key(t, "web")); err != nil {
		t.Fatal(err)
	}
	args := func(extra ...string) []string {
		return append([]string{"login", "--issuer", srv.URL, "--client-id", "web", "--key", key,
			"--scope", "nhn:deft/api helseid://scopes/identity/pid helseid://scopes/identity/security_level helseid://scopes/hpr/hpr_number"}, extra...)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{
			name:     "TestIDP login, decoded",
			args:     args("--test-pid", "17056600574", "--test-security-level", "4", "--test-hpr", "565501872", "--decode"),
			wantCode: 0,
			wantStdout: []string{`"aud": "nhn:deft"`, `"helseid://claims/identity/pid": "17056600574"`,
				`"helseid://claims/identity/security_level": "4"`, `"helseid://claims/hpr/hpr_number": "565501872"`,
				"# cnf.jkt is the thumbprint of the DPoP key\n", "# ID token (verified)\n", `"nonce": `},
		},
		{
			name:       "whole response",
			args:       args("--test-pid", "17056600574", "--json"),
			wantStdout: []string{`"token_type": "DPoP"`, `"id_token": "`},
		},
		{
			name:       "refused at the TestIDP",
			args:       args("--test-pid", "17056600574", "--test-security-level", "3", "--acr", "idp:testidp-oidc Level4"),
			wantCode:   1,
			wantStderr: "access_denied",
		},
		{name: "no key", args: []string{"login", "--issuer", srv.URL, "--client-id", "web"}, wantCode: 2, wantStderr: "are required"},
		{name: "level without pid", args: args("--test-security-level", "4"), wantCode: 2, wantStderr: "need --test-pid"},
		{name: "argument", args: args("extra"), wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "bad port", args: args("--port", "70000"), wantCode: 2, wantStderr: "is not a port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.wantCode, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}
