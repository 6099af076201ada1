package clustertest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/pgtest"
)

// TestCrash kills an instance with SIGKILL while clients are getting
// tokens from it, starts it again on the same store, and shows that every
// token a client received has its "issued" audit record and that the
// audit chain verifies: a record is durable before its token is sent, and
// a commit cut off by the kill leaves neither a token nor half a record.
func TestCrash(t *testing.T) {
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
			inst := s.start(t, "sts-crash")

			// The clients dial whichever process is current.
			var mu sync.Mutex
			current := inst
			hc := pinned(func() string {
				mu.Lock()
				defer mu.Unlock()
				return current.addr
			})
			c := s.client(t, singleClient, hc)

			received := &jtiSet{m: map[string]bool{}}
			var failed atomic.Int64
			ctx, stop := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			defer func() { stop(); wg.Wait() }() // also when the test fails early
			const workers = 8
			for range workers {
				wg.Go(func() {
					for ctx.Err() == nil {
						tok, err := c.Token(ctx, client.TokenRequest{})
						if err != nil {
							failed.Add(1)
							time.Sleep(10 * time.Millisecond)
							continue
						}
						_, payload, err := claims(tok.AccessToken)
						jti, _ := payload["jti"].(string)
						if err != nil || jti == "" {
							t.Errorf("a token without a jti: %v", err)
							continue
						}
						received.add(jti)
					}
				})
			}
			// Kill it once the load is well under way.
			const before = 100
			eventually(t, 30*time.Second, "tokens before the kill", func() bool { return received.len() >= before })
			inst.kill()
			time.Sleep(100 * time.Millisecond) // the requests in flight fail
			stop()
			wg.Wait()
			t.Logf("clients received %d tokens before the kill; %d requests failed", received.len(), failed.Load())
			if failed.Load() == 0 {
				t.Fatal("no request failed: the kill did not happen under load")
			}

			// The same instance again, on the same store: it continues its
			// chain.
			restarted := s.start(t, "sts-crash")
			mu.Lock()
			current = restarted
			mu.Unlock()
			tok, err := c.Token(t.Context(), client.TokenRequest{})
			if err != nil {
				t.Fatalf("a token after the restart: %v", err)
			}
			received.add(claim(t, tok.AccessToken, false, "jti"))

			out := s.cli(t, "audit", "verify")
			if !strings.Contains(out, "sts-crash: ") || !strings.Contains(out, ", intact; head ") {
				t.Fatalf("audit verify:\n%s", out)
			}
			t.Logf("audit verify: %s", strings.TrimSpace(out))
			issued := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(s.cli(t, "audit", "query", "--outcome", "issued")), "\n") {
				var rec struct {
					TokenJTI string `json:"token_jti"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("audit query: %q: %v", line, err)
				}
				issued[rec.TokenJTI] = true
			}
			missing := 0
			for jti := range received.m {
				if !issued[jti] {
					missing++
					t.Errorf("token %s was received but has no issued record", jti)
				}
			}
			t.Logf("%d issued records for %d received tokens; %d missing", len(issued), received.len(), missing)
		})
	}
}

type jtiSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *jtiSet) add(jti string) {
	s.mu.Lock()
	s.m[jti] = true
	s.mu.Unlock()
}

func (s *jtiSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
