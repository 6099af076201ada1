package server_test

import (
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
)

func readyStatus(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady polls /readyz until it answers want, for up to limit: with no
// traffic, readiness learns of failing writes by its own probe write, made
// at most every few seconds.
func waitReady(t *testing.T, base string, want int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for readyStatus(t, base) != want {
		if time.Since(start) > limit {
			t.Fatalf("/readyz did not answer %d within %v", want, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReadyFollowsWrites: a store that answers a ping but cannot write
// (here SQLite triggers refuse every insert into the replay and audit
// tables, as a read-only file or a full disk would) is not ready, and is
// ready again once a write succeeds, without a restart.
func TestReadyFollowsWrites(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	if got := readyStatus(t, s.URL); got != http.StatusOK {
		t.Fatalf("/readyz = %d at start", got)
	}
	db, err := sql.Open("sqlite", filepath.Join(s.Dir, "tillit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	breakWrites := func() {
		exec("CREATE TRIGGER no_jti BEFORE INSERT ON jti_log BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")
		exec("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")
	}
	repair := func() {
		exec("DROP TRIGGER no_jti")
		exec("DROP TRIGGER no_audit")
	}

	// A request whose write fails turns readiness red at once: a refusal
	// of an authenticated client, whose record cannot be written.
	c, err := client.New(client.Config{Issuer: s.URL, ClientID: "deft-client", Key: s.Key(t, "deft-client"), Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := c.ClientAssertion()
	if err != nil {
		t.Fatal(err)
	}
	breakWrites()
	resp, err := http.PostForm(s.URL+"/connect/token", url.Values{
		"grant_type": {"client_credentials"}, "scope": {"no:such/scope"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("a request whose refusal cannot be recorded: %d, want 500", resp.StatusCode)
	}
	if got := readyStatus(t, s.URL); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d after a failed write, want 503", got)
	}
	repair()
	if got := readyStatus(t, s.URL); got != http.StatusOK {
		t.Fatalf("/readyz = %d once writes work again, want 200", got)
	}

	// Without traffic, its own probe write finds out.
	breakWrites()
	waitReady(t, s.URL, http.StatusServiceUnavailable, 15*time.Second)
	repair()
	waitReady(t, s.URL, http.StatusOK, 15*time.Second)
}
