package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestDelegationCommands changes the delegation registry of a running
// server's store from the command line, as an operator does while serve
// runs, and checks that the server applies it.
func TestDelegationCommands(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, servertest.Options{Dir: dir})
	cfg := filepath.Join(dir, "cli.yaml")
	yml := "issuer: https://sts.example.org\nstorage: " + filepath.Join(dir, "tillit.db") + "\n"
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}

	// What the multi-tenant client gets for Customer, which has not
	// delegated to its supplier in the file.
	tokenFor := func() int {
		t.Helper()
		if _, err := srv.Srv.Registry().Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		return requestToken(t, srv, "multi-client", servertest.Customer)
	}
	if got := tokenFor(); got != http.StatusBadRequest {
		t.Fatalf("before add: status %d, want 400", got)
	}

	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a line stdout must contain
		wantStderr string
	}{
		{name: "add", args: []string{"add", "--organisation", servertest.Customer, "--supplier", servertest.Supplier, "--api", "nhn:deft,test:bearer"},
			wantStdout: "Organisation " + servertest.Customer + " now delegates to supplier " + servertest.Supplier + ", with the terms of nhn:deft, test:bearer accepted."},
		{name: "add again", args: []string{"add", "--organisation", servertest.Customer, "--supplier", servertest.Supplier},
			wantCode: 1, wantStderr: "already exists; remove it first"},
		{name: "add for an unknown api", args: []string{"add", "--organisation", servertest.Child, "--supplier", servertest.Supplier, "--api", "nhn:msh"},
			wantCode: 1, wantStderr: `api "nhn:msh" is not registered`},
		{name: "add without a supplier", args: []string{"add", "--organisation", servertest.Child},
			wantCode: 2, wantStderr: "--supplier is required"},
		{name: "add with a bad number", args: []string{"add", "--organisation", "310900037", "--supplier", servertest.Supplier},
			wantCode: 2, wantStderr: `--organisation "310900037" is not a valid organisation number`},
		{name: "list", args: []string{"list"},
			wantStdout: servertest.Customer + "     " + servertest.Supplier + "  nhn:deft,test:bearer  active    cli"},
		{name: "remove one the file declares", args: []string{"remove", "--organisation", servertest.Tenant, "--supplier", servertest.Supplier},
			wantCode: 1, wantStderr: "is declared in the configuration file: remove it there"},
		{name: "remove one that does not exist", args: []string{"remove", "--organisation", servertest.Child, "--supplier", servertest.Supplier},
			wantCode: 1, wantStderr: "there is no delegation from " + servertest.Child},
		{name: "no subcommand", args: nil, wantCode: 2, wantStderr: "Usage: tillit delegation <subcommand>"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			args := append([]string{"delegation"}, s.args...)
			if len(s.args) > 0 {
				args = append(args, "--config", cfg)
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != s.wantCode || !strings.Contains(stdout, s.wantStdout) || !strings.Contains(stderr, s.wantStderr) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, %q, %q", code, stdout, stderr, s.wantCode, s.wantStdout, s.wantStderr)
			}
		})
	}
	if got := tokenFor(); got != http.StatusOK {
		t.Fatalf("after add: status %d, want 200", got)
	}
	code, stdout, stderr := runCLI(t, "delegation", "list", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, servertest.Revoked+"     "+servertest.Supplier+"  nhn:deft              disabled  file") {
		t.Fatalf("list shows the file's delegations with their status: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "delegation", "remove", "--config", cfg, "--organisation", servertest.Customer, "--supplier", servertest.Supplier)
	if code != 0 || !strings.Contains(stdout, "is removed") {
		t.Fatalf("remove: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := tokenFor(); got != http.StatusBadRequest {
		t.Fatalf("after remove: status %d, want 400", got)
	}
}

// requestToken asks srv for a DEFT token for clientID acting for
// organisation, with the client library, and returns the HTTP status.
func requestToken(t *testing.T, srv *servertest.Server, clientID, organization string) int {
	t.Helper()
	c, err := client.New(client.Config{
		Issuer: srv.URL, ClientID: clientID, Key: srv.Key(t, clientID),
		Tenancy: client.MultiTenant, Now: srv.Clock.Now, HTTPClient: srv.HTTP.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Token(t.Context(), client.TokenRequest{Scopes: []string{"nhn:deft/api"}, Organization: client.Organization{Parent: organization}})
	var ce *client.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ce):
		return ce.StatusCode
	}
	t.Fatal(err)
	return 0
}
