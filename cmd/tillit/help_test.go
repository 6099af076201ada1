package main

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/help")

// groups are the commands with subcommands.
var groups = map[string]func() []command{
	"keys":       keysCommands,
	"delegation": delegationCommands,
	"idp":        idpCommands,
	"hpr":        hprCommands,
	"audit":      auditCommands,
	"bench":      benchCommands,
}

// Every command and subcommand answers --help, -h and "tillit help …" with
// its usage on stdout and exit 0, and nothing on stderr.
func TestHelpEverywhere(t *testing.T) {
	var paths [][]string
	for _, c := range commands() {
		paths = append(paths, []string{c.name})
		if subs, ok := groups[c.name]; ok {
			for _, s := range subs() {
				paths = append(paths, []string{c.name, s.name})
			}
		}
	}
	for _, p := range paths {
		name := strings.Join(p, " ")
		for _, args := range [][]string{
			append(append([]string{}, p...), "--help"),
			append(append([]string{}, p...), "-h"),
			append([]string{"help"}, p...),
		} {
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: tillit "+name) {
				t.Errorf("tillit %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, stderr, stdout)
			}
		}
		// A usage line and a description, like token's.
		_, stdout, _ := runCLI(t, append(append([]string{}, p...), "--help")...)
		if parts := strings.SplitN(stdout, "\n\n", 3); len(parts) < 2 || len(strings.TrimSpace(parts[1])) < 20 {
			t.Errorf("tillit %s --help has no description:\n%s", name, stdout)
		}
	}
}

// The top-level help lists exactly the commands there are.
func TestHelpListsTheCommands(t *testing.T) {
	_, stdout, _ := runCLI(t, "--help")
	var listed []string
	in := false
	for _, line := range strings.Split(stdout, "\n") {
		switch {
		case line == "Commands:":
			in = true
		case in && strings.HasPrefix(line, "  "):
			listed = append(listed, strings.Fields(line)[0])
		case in:
			in = false
		}
	}
	var want []string
	for _, c := range commands() {
		want = append(want, c.name)
	}
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("help lists %v, want %v", listed, want)
	}
}

// TestHelpGolden pins the help texts, the messages for unknown commands
// and their exit codes. go test ./cmd/tillit -run TestHelpGolden -update
// rewrites the files after a deliberate change.
func TestHelpGolden(t *testing.T) {
	cases := [][]string{
		{},
		{"--help"},
		{"serv"},
		{"keys"},
		{"keys", "rotat"},
		{"audit", "verfy"},
		{"delegation", "list", "extra"},
	}
	for _, c := range commands() {
		cases = append(cases, []string{c.name, "--help"})
		if subs, ok := groups[c.name]; ok {
			for _, s := range subs() {
				cases = append(cases, []string{c.name, s.name, "--help"})
			}
		}
	}
	for _, args := range cases {
		name := strings.Join(args, "_")
		if name == "" {
			name = "no_arguments"
		}
		name = strings.ReplaceAll(strings.TrimPrefix(name, "--"), "_--", "_")
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, args...)
			got := "$ tillit " + strings.Join(args, " ") + "\nexit " + strconv.Itoa(code) + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr
			file := filepath.Join("testdata", "help", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("tillit %s differs from %s:\n--- got\n%s\n--- want\n%s", strings.Join(args, " "), file, got, want)
			}
		})
	}
}
