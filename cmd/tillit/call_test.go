package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
	"github.com/tillit-sts/tillit/resource"
)

// TestCall runs tillit call against the real STS and a real API built on
// the resource package (DEFT's audience and scope, DPoP with nonces).
func TestCall(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{Clock: servertest.NewClock(time.Now())})
	v, err := resource.New(resource.Config{
		Issuer: srv.URL, Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"},
		Nonces: dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: []byte("tillit call test nonce key, 32 B")}),
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Header", r.Header.Get("X-Test"))
		json.NewEncoder(w).Encode(map[string]string{
			"method": r.Method, "client_id": c.ClientID, "child": c.Organization.Child, "body": string(body),
		})
	})))
	defer api.Close()
	keyFor := func(clientID string) string {
		p := filepath.Join(t.TempDir(), clientID+".jwk")
		if err := keyfile.WritePrivate(p, srv.Key(t, clientID)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deft := []string{"call", "--issuer", srv.URL, "--client-id", "deft-client", "--key", keyFor("deft-client"), "--resource", "nhn:deft"}
	with := func(extra ...string) []string { return append(append([]string{}, deft...), extra...) }
	file := filepath.Join(t.TempDir(), "body.txt")
	if err := os.WriteFile(file, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // substrings
		wantStderr string
	}{
		{name: "GET", args: with(api.URL + "/whoami"), wantCode: 0,
			wantStdout: []string{`"method":"GET"`, `"client_id":"deft-client"`}},
		{name: "POST a body, flags after the URL", args: with(api.URL+"/files", "-d", "hello", "-H", "X-Test: yes", "-i"),
			wantCode: 0, wantStdout: []string{"HTTP/1.1 200 OK", "X-Seen-Header: yes", `"method":"POST"`, `"body":"hello"`}},
		{name: "PUT from a file", args: with("-X", "put", "-d", "@"+file, api.URL+"/files"), wantCode: 0,
			wantStdout: []string{`"method":"PUT"`, `"body":"from a file"`}},
		{name: "child organisation", args: with("--child-org", servertest.Child, api.URL), wantCode: 0,
			wantStdout: []string{`"child":"` + servertest.Child + `"`}},
		{name: "refused by the API", args: []string{"call", "--issuer", srv.URL, "--client-id", "deft-client", "--key", keyFor("deft-client"), "--bearer", "--scope", "test:bearer/read", api.URL + "/whoami"}, wantCode: 1,
			wantStdout: []string{`"error":"invalid_token"`},
			wantStderr: `answered 401 Unauthorized (WWW-Authenticate: DPoP error="invalid_token", error_description="this API requires DPoP`},
		{name: "refused by the STS", args: with("--scope", "e-helse:sfm.api/sfm.api", api.URL), wantCode: 1,
			wantStderr: "tillit call: client: token endpoint answered HTTP 400: invalid_scope"},
		{name: "no URL", args: deft, wantCode: 2, wantStderr: "tillit call: no URL to call\n"},
		{name: "two URLs", args: with(api.URL, api.URL), wantCode: 2, wantStderr: "tillit call: unexpected argument"},
		{name: "no issuer", args: []string{"call", api.URL}, wantCode: 2, wantStderr: "tillit call: --issuer, --client-id and --key are required\n"},
		{name: "connect not host:port", args: with("--connect", "sts", api.URL), wantCode: 2, wantStderr: `tillit call: --connect "sts": want HOST:PORT` + "\n"},
		{name: "bad header", args: with("-H", "nocolon", api.URL), wantCode: 2, wantStderr: `invalid value "nocolon" for flag -H`},
		{name: "missing body file", args: with("-d", "@"+file+".missing", api.URL), wantCode: 1, wantStderr: "tillit call: -d: open "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout %q lacks %q", stdout, s)
				}
			}
			if strings.Contains(stdout+stderr, "eyJ") {
				t.Error("a token, assertion or proof was printed")
			}
		})
	}
}
