package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestIdPList lists the identity providers a running server's file
// declared, and one made outside the file, from the store the CLI's
// configuration names.
func TestIdPList(t *testing.T) {
	dir := t.TempDir()
	// The default registry declares identity_providers already: add to
	// its list.
	registry := strings.Replace(servertest.DefaultRegistry, "identity_providers:\n", `identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: Test login}
  - {name: idporten, type: oidc, enabled: false, issuer: "https://test.idporten.no", client_id: tillit-1, auth: private_key_jwt}
  - {name: secret-oidc, type: oidc, issuer: "https://sts.example.net", client_id: tillit-2, client_secret_env: TILLIT_TEST_IDP_SECRET}
`, 1) + "environment: test\n"
	t.Setenv("TILLIT_TEST_IDP_SECRET", "not-shown")
	srv := servertest.Start(t, servertest.Options{Dir: dir, Registry: registry})
	if _, err := store.Create(t.Context(), srv.Store, store.IdentityProviderKind, store.IdentityProvider{
		Name: "helseid-oidc", Type: store.IdentityProviderOIDC, Status: store.StatusActive}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cli.yaml")
	yml := "issuer: https://sts.example.org\nstorage: " + filepath.Join(dir, "tillit.db") + "\n"
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "list", args: []string{"idp", "list", "--config", cfg}, wantStdout: "" +
			"NAME           TYPE     DISPLAY NAME          STATUS    SOURCE  ISSUER                    CLIENT ID  AUTH\n" +
			"helseid-oidc   oidc     -                     active    store   -                         -          -\n" +
			"idporten       oidc     -                     disabled  file    https://test.idporten.no  tillit-1   private_key_jwt\n" +
			"secret-oidc    oidc     -                     active    file    https://sts.example.net   tillit-2   client_secret_post\n" +
			"testidp-oidc   testidp  Test login            active    file    -                         -          -\n" +
			"upstream-oidc  oidc     An upstream provider  active    file    -                         -          -\n"},
		{name: "no configuration", args: []string{"idp", "list"}, wantCode: 1, wantStderr: "name the server's configuration with --config"},
		{name: "unexpected argument", args: []string{"idp", "list", "--config", cfg, "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "no subcommand", args: []string{"idp"}, wantCode: 2, wantStderr: "Usage: tillit idp <subcommand>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || (tt.wantStdout != "" && stdout != tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr containing %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// tillit idp jwks prints the public key the first server start made for a
// private_key_jwt provider, without the key-encryption key; rotate-key
// (with it) adds a key that signs later, and the set then has both.
func TestIdPKeys(t *testing.T) {
	dir := t.TempDir()
	registry := strings.Replace(servertest.DefaultRegistry, "identity_providers:\n", `identity_providers:
  - {name: idporten, type: oidc, issuer: "https://test.idporten.no", client_id: tillit-1, auth: private_key_jwt}
  - {name: secret-oidc, type: oidc, issuer: "https://sts.example.net", client_id: tillit-2, client_secret_env: TILLIT_TEST_IDP_SECRET}
`, 1)
	t.Setenv("TILLIT_TEST_IDP_SECRET", "not-shown")
	srv := servertest.Start(t, servertest.Options{Dir: dir, Registry: registry})
	recs, err := srv.Store.Keys(t.Context(), keys.UpstreamPurpose("idporten"))
	if err != nil || len(recs) != 1 || recs[0].Algorithm != "RS256" {
		t.Fatalf("the start made %d keys (%v), want one RS256 key", len(recs), err)
	}
	noKEK := filepath.Join(dir, "cli.yaml")
	if err := os.WriteFile(noKEK, []byte("issuer: https://sts.example.org\nstorage: "+filepath.Join(dir, "tillit.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withKEK := filepath.Join(dir, "cli-kek.yaml")
	if err := os.WriteFile(withKEK, []byte("issuer: https://sts.example.org\nstorage: "+filepath.Join(dir, "tillit.db")+
		"\nkeys:\n  encryption_key_file: "+filepath.Join(dir, "kek")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks := func(t *testing.T, stdout string) []jose.JSONWebKey {
		t.Helper()
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(stdout), &set); err != nil {
			t.Fatalf("stdout is not a JWKS: %v\n%s", err, stdout)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || k.Use != "sig" || k.Algorithm == "" || strings.Contains(stdout, `"d"`) {
				t.Fatalf("key %s: not a public signing key with alg\n%s", k.KeyID, stdout)
			}
		}
		return set.Keys
	}

	code, stdout, stderr := runCLI(t, "idp", "jwks", "idporten", "--config", noKEK)
	if code != 0 {
		t.Fatalf("idp jwks: exit %d: %s", code, stderr)
	}
	if got := jwks(t, stdout); len(got) != 1 || got[0].KeyID != recs[0].ID {
		t.Fatalf("idp jwks printed %v, want the key %s", got, recs[0].ID)
	}
	code, stdout, stderr = runCLI(t, "idp", "rotate-key", "--config", withKEK, "idporten", "--after", "1h", "--alg", "ES256")
	if code != 0 || !strings.Contains(stderr, "Register this key set at the provider before then") {
		t.Fatalf("idp rotate-key: exit %d: %s", code, stderr)
	}
	if got := jwks(t, stdout); len(got) != 2 || got[0].KeyID != recs[0].ID || got[1].Algorithm != "ES256" {
		t.Fatalf("rotate-key printed %v, want the old key and a new ES256 one", got)
	}
	_, again, _ := runCLI(t, "idp", "jwks", "--config", noKEK, "idporten")
	if again != stdout {
		t.Fatalf("idp jwks after the rotation:\n%s\nwant what rotate-key printed:\n%s", again, stdout)
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "jwks without a name", args: []string{"idp", "jwks", "--config", noKEK}, wantCode: 2, wantStderr: "name the identity provider"},
		{name: "jwks of an unknown provider", args: []string{"idp", "jwks", "nobody", "--config", noKEK}, wantCode: 1, wantStderr: `there is no identity provider "nobody"`},
		{name: "jwks of a provider with a secret", args: []string{"idp", "jwks", "secret-oidc", "--config", noKEK}, wantCode: 1, wantStderr: `identity provider "secret-oidc" does not authenticate with private_key_jwt`},
		{name: "jwks of two providers", args: []string{"idp", "jwks", "idporten", "secret-oidc", "--config", noKEK}, wantCode: 2, wantStderr: `unexpected argument "secret-oidc"`},
		{name: "rotate-key without the KEK", args: []string{"idp", "rotate-key", "idporten", "--config", noKEK}, wantCode: 1, wantStderr: "key-encryption key"},
		{name: "rotate-key HS256", args: []string{"idp", "rotate-key", "idporten", "--config", withKEK, "--alg", "HS256"}, wantCode: 2, wantStderr: `--alg "HS256" is not RS256, PS256 or ES256`},
		{name: "rotate-key of a provider with a secret", args: []string{"idp", "rotate-key", "secret-oidc", "--config", withKEK}, wantCode: 1, wantStderr: "does not authenticate with private_key_jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stderr containing %q", code, stdout, stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
	if recs, _ := srv.Store.Keys(t.Context(), keys.UpstreamPurpose("idporten")); len(recs) != 2 {
		t.Fatalf("%d keys after the refused commands, want 2", len(recs))
	}
}
