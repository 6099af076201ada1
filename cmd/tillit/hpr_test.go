package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestHPR adds, lists and removes HPR entries in the store of a running
// server whose file declares one, as the CLI's configuration names it.
func TestHPR(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, servertest.Options{Dir: dir, Registry: servertest.DefaultRegistry + `
environment: test
hpr:
  - number: "565505933"
    pid: "06828399789"
    approvals:
      - profession: LE
        specialities: [{value: "1", description: Allmennmedisin}]
`})
	write := func(name, yml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yml+"storage: "+filepath.Join(dir, "tillit.db")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("cli.yaml", "issuer: https://sts.example.org\nenvironment: test\n")
	prod := write("prod.yaml", "issuer: https://sts.example.org\n")

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "add", args: []string{"hpr", "add", "--config", cfg, "--number", "431001110", "--pid", "17056600574", "--profession", "SP,LE", "--speciality", "2=Indremedisin"},
			wantStdout: "HPR number 431001110 (SP, LE) now belongs to pid 17056600574."},
		{name: "list", args: []string{"hpr", "list", "--config", cfg}, wantStdout: "" +
			"NUMBER     PID          PROFESSIONS  SPECIALITIES    STATUS  SOURCE\n" +
			"431001110  17056600574  SP,LE        Indremedisin    active  cli\n" +
			"565505933  06828399789  LE           Allmennmedisin  active  file\n"},
		{name: "add a number again", args: []string{"hpr", "add", "--config", cfg, "--number", "431001110", "--pid", "01018099019", "--profession", "LE"}, wantCode: 1, wantStderr: "HPR number 431001110 already exists"},
		{name: "add a pid again", args: []string{"hpr", "add", "--config", cfg, "--number", "9144889", "--pid", "06828399789", "--profession", "LE"}, wantCode: 1, wantStderr: "pid 06828399789 already has the HPR entry 565505933"},
		{name: "synthetic pid in production", args: []string{"hpr", "add", "--config", prod, "--number", "9144889", "--pid", "04818099091", "--profession", "LE"}, wantCode: 1, wantStderr: "pid 04818099091 is a synthetic test number, allowed only with environment: test"},
		{name: "pid check digit", args: []string{"hpr", "add", "--config", cfg, "--number", "9144889", "--pid", "17056600575", "--profession", "LE"}, wantCode: 2, wantStderr: `--pid "17056600575" is not a national identity number`},
		{name: "number with a letter", args: []string{"hpr", "add", "--config", cfg, "--number", "91448X9", "--pid", "17056600574", "--profession", "LE"}, wantCode: 2, wantStderr: `--number "91448X9" is not an HPR number`},
		{name: "profession missing", args: []string{"hpr", "add", "--config", cfg, "--number", "9144889", "--pid", "17056600574"}, wantCode: 2, wantStderr: "--profession is required"},
		{name: "profession not a code", args: []string{"hpr", "add", "--config", cfg, "--number", "9144889", "--pid", "17056600574", "--profession", "lege"}, wantCode: 2, wantStderr: `--profession "lege" is not a profession code`},
		{name: "speciality without value", args: []string{"hpr", "add", "--config", cfg, "--speciality", "=x"}, wantCode: 2, wantStderr: "want VALUE=DESCRIPTION"},
		{name: "remove a file entry", args: []string{"hpr", "remove", "--config", cfg, "--number", "565505933"}, wantCode: 1, wantStderr: "HPR entry 565505933 is declared in the configuration: remove it there"},
		{name: "remove", args: []string{"hpr", "remove", "--config", cfg, "--number", "431001110"}, wantStdout: "HPR entry 431001110 is removed."},
		{name: "remove again", args: []string{"hpr", "remove", "--config", cfg, "--number", "431001110"}, wantCode: 1, wantStderr: "there is no HPR entry 431001110"},
		{name: "remove without number", args: []string{"hpr", "remove", "--config", cfg}, wantCode: 2, wantStderr: "--number is required"},
		{name: "no subcommand", args: []string{"hpr"}, wantCode: 2, wantStderr: "Usage: tillit hpr <subcommand>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.HasPrefix(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout starting:\n%s\nstderr containing %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	if h, err := store.Get(t.Context(), srv.Store, store.HealthPersonnelKind, "565505933"); err != nil || h.Approvals[0].Specialities[0].Description != "Allmennmedisin" {
		t.Errorf("file entry = %+v, %v", h, err)
	}
}
