package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// writeTestKey writes a fresh ES256 client key and returns its path.
func writeTestKey(t *testing.T) string {
	t.Helper()
	k, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "client.jwk")
	if err := keyfile.WritePrivate(p, k); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokenArguments covers everything that is refused before a request is
// sent. The issuer below does not resolve, so a test that got as far as the
// network would fail with a different message.
func TestTokenArguments(t *testing.T) {
	key := writeTestKey(t)
	pub := filepath.Join(t.TempDir(), "pub.jwk")
	k, _ := keyfile.ReadFile(key)
	if err := keyfile.WritePublic(pub, k); err != nil {
		t.Fatal(err)
	}
	base := []string{"token", "--issuer", "https://sts.invalid", "--client-id", "c1", "--key", key}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "nothing", args: []string{"token"}, wantCode: 2, wantStderr: "tillit token: --issuer, --client-id and --key are required\n"},
		{name: "no key", args: []string{"token", "--issuer", "https://sts.invalid", "--client-id", "c1"}, wantCode: 2, wantStderr: "tillit token: --issuer, --client-id and --key are required\n"},
		{name: "extra argument", args: with("nhn:deft/api"), wantCode: 2, wantStderr: `tillit token: unexpected argument "nhn:deft/api"`},
		{name: "empty scope", args: with("--scope", " "), wantCode: 2, wantStderr: `invalid value " " for flag -scope: empty scope`},
		{name: "both organisation flags", args: with("--child-org", "313231593", "--org", "994598759"), wantCode: 2, wantStderr: "tillit token: --child-org is for single-tenant clients, --org for multi-tenant ones; give one\n"},
		{name: "bad child organisation", args: with("--child-org", "31323159"), wantCode: 2, wantStderr: `tillit token: --child-org: helseid: child organisation "31323159" is not a valid organisation number`},
		{name: "bad parent", args: with("--org", "994598758"), wantCode: 2, wantStderr: `tillit token: --org: helseid: parent organisation "994598758" is not a valid organisation number`},
		{name: "bad child of parent", args: with("--org", "994598759:1"), wantCode: 2, wantStderr: `tillit token: --org: helseid: child organisation "1" is not a valid organisation number`},
		{name: "org with a third part", args: with("--org", "994598759:313231593:x"), wantCode: 2, wantStderr: `child organisation "313231593:x" is not a valid organisation number`},
		{name: "journal id not a UUID", args: with("--sfm-journal-id", "42"), wantCode: 2, wantStderr: `tillit token: --sfm-journal-id: helseid: SFM journal id "42" is not a UUID`},
		{name: "connect without a port", args: with("--connect", "localhost"), wantCode: 2, wantStderr: `tillit token: --connect "localhost": want HOST:PORT` + "\n"},
		{name: "connect without a host", args: with("--connect", ":8443"), wantCode: 2, wantStderr: `tillit token: --connect ":8443": want HOST:PORT` + "\n"},
		{name: "connect with an empty port", args: with("--connect", "localhost:"), wantCode: 2, wantStderr: `tillit token: --connect "localhost:": want HOST:PORT` + "\n"},
		{name: "key file missing", args: []string{"token", "--issuer", "https://sts.invalid", "--client-id", "c1", "--key", key + ".missing"}, wantCode: 1, wantStderr: "tillit token: keyfile: open " + key + ".missing: no such file or directory\n"},
		{name: "public key given", args: []string{"token", "--issuer", "https://sts.invalid", "--client-id", "c1", "--key", pub}, wantCode: 1, wantStderr: "tillit token: keyfile: not a private RSA or EC key (" + pub + ")\n"},
		{name: "plain http issuer", args: []string{"token", "--issuer", "http://sts.invalid", "--client-id", "c1", "--key", key}, wantCode: 1, wantStderr: `tillit token: client: issuer "http://sts.invalid": plain http is allowed only to a loopback address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			if stdout != "" {
				t.Fatalf("stdout %q", stdout)
			}
		})
	}
}

func TestTokenDetails(t *testing.T) {
	const journal = "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"
	tests := []struct {
		name                   string
		childOrg, org, journal string
		want                   string
	}{
		{name: "none", want: ""},
		{name: "single-tenant child", childOrg: "313231593",
			want: `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:2.16.578.1.12.4.1.4.101","type":"ENH","value":"313231593"}}}}`},
		{name: "multi-tenant parent", org: "994598759",
			want: `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}}`},
		{name: "multi-tenant parent with empty child", org: "994598759:",
			want: `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}}`},
		{name: "multi-tenant parent and child with journal", org: "994598759:313231593", journal: journal,
			want: `[{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:313231593"}}}},{"type":"nhn:sfm:journal-id","value":{"journal_id":"` + journal + `"}}]`},
		{name: "journal only", journal: journal,
			want: `{"type":"nhn:sfm:journal-id","value":{"journal_id":"` + journal + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tokenDetails(tt.childOrg, tt.org, tt.journal)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if len(d) != 0 {
					t.Fatalf("details %v", d)
				}
				return
			}
			got, err := helseid.MarshalDetails(d)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestScopeFlag(t *testing.T) {
	var s scopeFlag
	for _, v := range []string{"nhn:deft/api", "nhn:msh/api  e-helse:sfm.api/sfm.api"} {
		if err := s.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.String(); got != "nhn:deft/api nhn:msh/api e-helse:sfm.api/sfm.api" || len(s) != 3 {
		t.Fatalf("scopes %q (%d)", got, len(s))
	}
}

func TestDecodeAccessTokenBinding(t *testing.T) {
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	tests := []struct {
		name      string
		tokenType string
		claims    string
		want      string
	}{
		{name: "bound to the DPoP key", tokenType: "DPoP", claims: `{"cnf":{"jkt":"` + jkt + `"}}`, want: "# cnf.jkt is the thumbprint of the DPoP key\n"},
		{name: "bound to another key", tokenType: "DPoP", claims: `{"cnf":{"jkt":"other"}}`, want: "# cnf.jkt is NOT the thumbprint of the DPoP key (" + jkt + ")\n"},
		{name: "DPoP token without cnf", tokenType: "dpop", claims: `{"sub":"x"}`, want: "# cnf.jkt is missing: the DPoP token is not bound to a key\n"},
		{name: "Bearer token says nothing about binding", tokenType: "Bearer", claims: `{"sub":"x"}`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &client.TokenResponse{AccessToken: signJWT(t, "at+jwt", tt.claims), TokenType: tt.tokenType}
			var buf bytes.Buffer
			if err := decodeAccessToken(&buf, tok, jkt); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if !strings.Contains(out, `"typ": "at+jwt"`) {
				t.Fatalf("header not printed:\n%s", out)
			}
			if tt.want == "" {
				if strings.Contains(out, "cnf.jkt") {
					t.Fatalf("binding note on a Bearer token:\n%s", out)
				}
				return
			}
			if !strings.HasSuffix(out, tt.want) {
				t.Fatalf("output does not end with %q:\n%s", tt.want, out)
			}
		})
	}
	var buf bytes.Buffer
	if err := decodeAccessToken(&buf, &client.TokenResponse{AccessToken: "opaque-reference-token", TokenType: "DPoP"}, jkt); err == nil {
		t.Fatal("an opaque token decoded")
	}
}

// TestTokenAgainstServer runs "tillit token" against the real token service.
// The command signs with the wall clock, so the server's clock is set to it.
func TestTokenAgainstServer(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{Clock: servertest.NewClock(time.Now())})
	keyFor := func(clientID string) string {
		p := filepath.Join(t.TempDir(), clientID+".jwk")
		if err := keyfile.WritePrivate(p, srv.Key(t, clientID)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deft, bearer := keyFor("deft-client"), keyFor("bearer-client")
	args := func(key string, extra ...string) []string {
		return append([]string{"token", "--issuer", srv.URL, "--client-id", filepath.Base(strings.TrimSuffix(key, ".jwk")), "--key", key}, extra...)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{
			name:       "DPoP token, decoded",
			args:       args(deft, "--scope", "nhn:deft/api", "--decode"),
			wantStdout: []string{`"typ": "at+jwt"`, `"aud": "nhn:deft"`, `"client_id": "deft-client"`, "# cnf.jkt is the thumbprint of the DPoP key\n"},
		},
		{
			name:       "whole response as JSON",
			args:       args(deft, "--scope", "nhn:deft/api", "--json"),
			wantStdout: []string{`"token_type": "DPoP"`, `"scope": "nhn:deft/api"`},
		},
		{
			name:       "single-tenant child organisation",
			args:       args(deft, "--scope", "nhn:deft/api", "--child-org", servertest.Child, "--decode"),
			wantStdout: []string{`"` + helseid.ClaimOrgNrChild + `": "` + servertest.Child + `"`},
		},
		{
			name:       "Bearer token",
			args:       args(bearer, "--scope", "test:bearer/read", "--bearer", "--json"),
			wantStdout: []string{`"token_type": "Bearer"`},
		},
		{
			name:       "refused scope",
			args:       args(deft, "--scope", "e-helse:sfm.api/sfm.api"),
			wantCode:   1,
			wantStderr: "tillit token: client: token endpoint answered HTTP 400: invalid_scope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if tt.wantCode != 0 {
				return
			}
			first, _, _ := strings.Cut(stdout, "\n")
			if slices.Contains(tt.args, "--json") {
				var resp client.TokenResponse
				if err := json.Unmarshal([]byte(stdout), &resp); err != nil || resp.AccessToken == "" {
					t.Fatalf("--json output is not a token response: %v\n%s", err, stdout)
				}
			} else if strings.Count(first, ".") != 2 {
				t.Fatalf("first line is not the access token: %q", first)
			}
		})
	}
}
