package main

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store/postgres"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// TestMain lets tests of this package use PostgreSQL; the server starts only
// for the tests that ask for it.
func TestMain(m *testing.M) { pgtest.Main(m) }

// writeConfig writes a minimal server configuration naming storage and
// returns its path.
func writeConfig(t *testing.T, storage string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tillit.yaml")
	doc := "issuer: https://sts.example.org\n"
	if storage != "" {
		doc += "storage: " + storage + "\n"
	}
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigratePostgres migrates a new database and then one that is up to
// date. The URL comes from TILLIT_STORAGE and carries a password, which
// nothing may print.
func TestMigratePostgres(t *testing.T) {
	u := strings.Replace(pgtest.URL(t), "postgres://postgres@", "postgres://postgres:hunter2@", 1)
	t.Setenv(config.EnvStorage, u)
	cfg := writeConfig(t, "")

	code, stdout, stderr := runCLI(t, "migrate", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"applied 0001_init.sql, ", "; the schema is at version " + itoa(postgres.SchemaVersion())} {
		if !strings.Contains(stdout, want) {
			t.Errorf("first migrate said %q, want %q", stdout, want)
		}
	}
	code, stdout2, stderr2 := runCLI(t, "migrate", "--config", cfg)
	if code != 0 {
		t.Fatalf("second migrate: exit %d: %s", code, stderr2)
	}
	if want := "nothing to apply"; !strings.Contains(stdout2, want) {
		t.Errorf("second migrate said %q, want %q", stdout2, want)
	}
	for _, out := range []string{stdout, stderr, stdout2, stderr2} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "search_path") {
			t.Errorf("output shows the URL's password or query: %q", out)
		}
	}

	// The server's stores open the same URL: keys rotate works on it.
	kek := make([]byte, 32)
	rand.Read(kek)
	t.Setenv(config.EnvKeyEncryptionKey, base64.StdEncoding.EncodeToString(kek))
	if code, stdout, stderr := runCLI(t, "keys", "rotate", "--config", cfg); code != 0 || !strings.Contains(stdout, "is published") {
		t.Errorf("keys rotate on PostgreSQL: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestMigrateSQLite(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, filepath.Join(dir, "tillit.db"))
	tests := []struct {
		name string
		want string
	}{
		{name: "new file", want: "created the database with the schema at version " + itoa(sqlite.SchemaVersion())},
		{name: "existing file", want: "the schema is at version " + itoa(sqlite.SchemaVersion())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "migrate", "--config", cfg)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, tt.want) {
				t.Errorf("said %q, want %q", stdout, tt.want)
			}
		})
	}
}

func TestMigrateUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "no config", args: []string{"migrate"}, wantCode: 1, wantErr: "name the server's configuration with --config"},
		{name: "extra argument", args: []string{"migrate", "--config", "x.yaml", "now"}, wantCode: 2, wantErr: `tillit migrate: unexpected argument "now"`},
		{name: "unknown flag", args: []string{"migrate", "--force"}, wantCode: 2, wantErr: "flag provided but not defined"},
		{name: "unreachable PostgreSQL", args: []string{"migrate", "--config", "@pg"}, wantCode: 1, wantErr: "postgres: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args[len(args)-1] == "@pg" {
				// Port 1 on loopback: nothing listens there.
				args = append(args[:len(args)-1:len(args)-1], writeConfig(t, "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=5"))
			}
			code, _, stderr := runCLI(t, args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
