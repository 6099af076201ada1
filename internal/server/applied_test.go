package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestUnchangedFileNotReadAgain: a server applies its file's registry and
// records so in the store; a restart with the same file, key files and
// build does not read the registry again, and everything that could make
// the store differ from the file makes it apply the file again.
func TestUnchangedFileNotReadAgain(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(config.EnvKeyEncryptionKey, keys.NewKEK())
	keyFile := filepath.Join(dir, "c-1.jwks.json")
	writePublicJWKS(t, keyFile)
	writeConfig := func(name, clientName string, settings ...string) string {
		path := filepath.Join(dir, name)
		yml := fmt.Sprintf(strings.Join(settings, "\n")+`
issuer: https://sts.example.org
listen: 127.0.0.1:0
data_dir: %s
apis:
  - {audience: "nhn:deft", name: DEFT, scopes: [nhn:deft/api]}
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
client_systems:
  - {id: epj, name: EPJ, supplier: "310900028"}
clients:
  - {id: c-1, name: %q, system: epj, organisation: "310900036", scopes: [nhn:deft/api], jwks_file: %s}
`, dir, clientName, keyFile)
		if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	file := writeConfig("tillit.yaml", "First")

	// start starts a server on path and reports whether it applied the
	// file, and the name it then serves for c-1.
	start := func(path string) (applied bool, name string) {
		t.Helper()
		srv, logs := startFromFile(t, path)
		defer srv.Close()
		skipped := strings.Contains(logs, "registry file unchanged since it was applied")
		c, ok := srv.Registry().Current().Client("c-1")
		if !ok {
			t.Fatal("c-1 is not in the snapshot")
		}
		return !skipped, c.Name
	}
	steps := []struct {
		name        string
		change      func() string // returns the file to start with
		wantApplied bool
		wantName    string
	}{
		{"first start", func() string { return file }, true, "First"},
		{"restart, nothing changed", func() string { return file }, false, "First"},
		{"the file changed", func() string { return writeConfig("tillit.yaml", "Second") }, true, "Second"},
		{"restart after the change", func() string { return file }, false, "Second"},
		{"another instance's file, other settings only", func() string {
			return writeConfig("b.yaml", "Second", "instance: b", "registry_poll: 5s")
		}, false, "Second"},
		{"a key file changed", func() string { writePublicJWKS(t, keyFile); return file }, true, "Second"},
		{"a store write by the CLI", func() string {
			addDelegation(t, file)
			return file
		}, false, "Second"},
		{"another file applied to the store", func() string {
			if applied, name := start(writeConfig("other.yaml", "Other")); !applied || name != "Other" {
				t.Fatalf("the other file: applied %v, name %q", applied, name)
			}
			return file
		}, true, "Second"},
		{"restart after the other file", func() string { return file }, false, "Second"},
	}
	for _, step := range steps {
		path := step.change()
		if applied, name := start(path); applied != step.wantApplied || name != step.wantName {
			t.Fatalf("%s: applied %v, c-1 named %q; want applied %v, %q", step.name, applied, name, step.wantApplied, step.wantName)
		}
	}
}

// startFromFile starts a server as serve does on the configuration file
// at path, and returns it with what it logged while starting.
func startFromFile(t *testing.T, path string) (*server.Server, string) {
	t.Helper()
	src, err := config.ReadSource(path, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := src.Settings()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv, err := server.New(t.Context(), cfg, server.Options{Source: src, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return srv, logs.String()
}

// writePublicJWKS writes a new ES256 public key set to path.
func writePublicJWKS(t *testing.T, path string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// addDelegation adds a delegation to the store of the configuration at
// path, as `tillit delegation add` does: a record the file does not
// manage.
func addDelegation(t *testing.T, path string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.Open(t.Context(), cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := store.Delegation{Organization: "310900036", Supplier: "310900028", Status: store.StatusActive}
	if _, err := store.Create(t.Context(), st, store.DelegationKind, d); err != nil {
		t.Fatal(err)
	}
}

// TestLargeFileRegistryChecked: the registry of a large file is parsed
// only once the store is open, and a mistake in it still stops the start
// with the line of the mistake, having applied nothing.
func TestLargeFileRegistryChecked(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(config.EnvKeyEncryptionKey, keys.NewKEK())
	keyFile := filepath.Join(dir, "keys.json")
	writePublicJWKS(t, keyFile)
	var b strings.Builder
	fmt.Fprintf(&b, "issuer: https://sts.example.org\nlisten: 127.0.0.1:0\ndata_dir: %s\n", dir)
	b.WriteString("apis:\n  - {audience: \"nhn:deft\", name: DEFT, scopes: [nhn:deft/api]}\n")
	b.WriteString("organisations:\n  - {number: \"310900028\", name: Supplier AS}\n  - {number: \"310900036\", name: Customer AS}\n")
	b.WriteString("client_systems:\n  - {id: epj, name: EPJ, supplier: \"310900028\"}\nclients:\n")
	for i := 0; b.Len() < 2<<20; i++ {
		fmt.Fprintf(&b, "  - id: c-%d\n    name: A client with a name long enough to make the file large quickly %d\n    system: epj\n    organisation: \"310900036\"\n    scopes: [nhn:deft/api]\n    jwks_file: %s\n", i, i, keyFile)
	}
	good := b.String()
	bad := good + "  - id: broken\n    name: Broken\n    system: no-such-system\n    organisation: \"310900036\"\n    scopes: [nhn:deft/api]\n    jwks_file: " + keyFile + "\n"
	badLine := strings.Count(good, "\n") + 3

	path := filepath.Join(dir, "tillit.yaml")
	start := func(yml string) (*server.Server, error) {
		t.Helper()
		if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := config.ReadSource(path, config.Overrides{})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := src.Settings()
		if err != nil {
			t.Fatalf("the settings of a file with a registry mistake: %v", err)
		}
		return server.New(t.Context(), cfg, server.Options{Source: src})
	}
	_, err := start(bad)
	if want := fmt.Sprintf("tillit.yaml:%d", badLine); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "no-such-system") {
		t.Fatalf("start with a registry mistake: %v; want it at %s", err, want)
	}
	st, err := server.Open(t.Context(), filepath.Join(dir, "tillit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.RegistryVersion(t.Context()); err != nil || v != 0 {
		t.Errorf("after the refused start the registry is at version %d (%v), want nothing applied", v, err)
	}
	st.Close()

	srv, err := start(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Registry().Current().Client("c-0"); !ok {
		t.Error("c-0 is not served")
	}
	srv.Close()
}

// TestUnchangedFileRelativePaths: a configuration named by a relative
// path, naming its key and persons files relative to its folder, as
// --dev writes one; the files are found and digested, and a restart
// skips the registry.
func TestUnchangedFileRelativePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(config.EnvKeyEncryptionKey, keys.NewKEK())
	if err := os.Mkdir("conf", 0o700); err != nil {
		t.Fatal(err)
	}
	writePublicJWKS(t, filepath.Join("conf", "c-1.jwks.json"))
	if err := os.WriteFile(filepath.Join("conf", "persons.csv"), []byte("pid,given_name,middle_name,family_name\n13116900216,Kari,,Nordmann\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `issuer: https://sts.example.org
listen: 127.0.0.1:0
data_dir: state
environment: test
persons_file: persons.csv
apis:
  - {audience: "nhn:deft", name: DEFT, scopes: [nhn:deft/api]}
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
client_systems:
  - {id: epj, name: EPJ, supplier: "310900028"}
clients:
  - {id: c-1, name: One, system: epj, organisation: "310900036", scopes: [nhn:deft/api], jwks_file: c-1.jwks.json}
`
	if err := os.WriteFile(filepath.Join("conf", "tillit.yaml"), []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, wantSkipped := range []bool{false, true} {
		srv, logs := startFromFile(t, filepath.Join("conf", "tillit.yaml"))
		srv.Close()
		if strings.Contains(logs, "could not record") {
			t.Errorf("start %d: %s", i+1, logs)
		}
		if skipped := strings.Contains(logs, "registry file unchanged"); skipped != wantSkipped {
			t.Errorf("start %d skipped the registry: %v, want %v", i+1, skipped, wantSkipped)
		}
	}
}
