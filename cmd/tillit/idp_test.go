package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
  - {name: idporten, type: oidc, enabled: false}
`, 1) + "environment: test\n"
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
			"NAME           TYPE     DISPLAY NAME          STATUS    SOURCE\n" +
			"helseid-oidc   oidc     -                     active    store\n" +
			"idporten       oidc     -                     disabled  file\n" +
			"testidp-oidc   testidp  Test login            active    file\n" +
			"upstream-oidc  oidc     An upstream provider  active    file\n"},
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
