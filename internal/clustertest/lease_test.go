package clustertest

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/pgtest"
)

// TestDuplicateInstance: a server configured with the instance name of a
// running server refuses to start, naming the server that has it and what
// to change, and the running one goes on serving. Once that one stops
// cleanly the name is free at once; once a server is killed, its name is
// free when its lease expires, and a restart waits for that instead of
// failing.
func TestDuplicateInstance(t *testing.T) {
	tests := []struct {
		name    string
		storage func(t *testing.T) string
	}{
		{name: "SQLite", storage: func(t *testing.T) string { return filepath.Join(t.TempDir(), "tillit.db") }},
		{name: "PostgreSQL", storage: func(t *testing.T) string { return pgtest.URL(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, tt.storage(t))
			token := func(inst *instance) {
				t.Helper()
				if _, err := s.client(t, singleClient, inst.http).Token(t.Context(), client.TokenRequest{}); err != nil {
					t.Fatalf("a token from %s: %v", inst.name, err)
				}
			}
			first := s.start(t, "sts-a")

			second, err := s.tryStart(t, "sts-a")
			if !errors.Is(err, errExited) {
				t.Fatalf("a second server with the same instance started: %v", err)
			}
			if code := second.cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			want := fmt.Sprintf("tillit serve: server: instance \"sts-a\" is already served by pid %d on ", first.cmd.Process.Pid)
			if log := second.log.String(); !strings.Contains(log, want) || !strings.Contains(log, "give each server its own `instance` in the configuration") {
				t.Errorf("the refusal does not say who has the name and what to change; want %q in\n%s", want, log)
			}
			token(first)

			first.stop()
			third := s.start(t, "sts-a")
			if strings.Contains(third.log.String(), "waiting to see whether it renews it") {
				t.Errorf("the server after a clean stop waited for the lease:\n%s", third.log)
			}
			token(third)

			third.kill()
			fourth := s.start(t, "sts-a")
			if !strings.Contains(fourth.log.String(), "instance lease taken over") {
				t.Errorf("the server after a kill did not take the lease over:\n%s", fourth.log)
			}
			token(fourth)
		})
	}
}
