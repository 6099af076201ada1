package stalltest

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestSQLiteLocked holds the SQLite file's write lock from another
// connection, as another process's long transaction would, for longer than
// the store's busy timeout: no request may wait for the lock past its
// deadline, refusals included.
func TestSQLiteLocked(t *testing.T) {
	sts := servertest.Start(t, servertest.Options{Settings: settings})
	h := newHarness(t, sts)
	nonce := h.nonce(t)
	calls := h.calls(t, nonce)

	db, err := sql.Open("sqlite", filepath.Join(sts.Dir, "tillit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			conn.ExecContext(ctx, "ROLLBACK")
		}
	}()

	checkUnavailable(t, calls, sendAll(t, calls))

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
	t.Logf("recovered %v after the lock was released", h.waitRecovered(t, 15*time.Second).Round(time.Millisecond))
	checkChain(t, sts)
}

// TestPostgresStopped stops the whole PostgreSQL server (postmaster and
// backends) with SIGSTOP, as a hung database host, while requests of every
// kind arrive; then lets it go on with SIGCONT.
func TestPostgresStopped(t *testing.T) {
	ctx := context.Background()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paused := false
	t.Cleanup(func() {
		if paused {
			pg.Resume()
		}
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	u, err := pg.CreateDatabase(ctx, "stall")
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	sts := servertest.Start(t, servertest.Options{Settings: settings, Log: log,
		Storage: u})
	h := newHarness(t, sts)
	nonce := h.nonce(t)
	calls := h.calls(t, nonce)
	// A connection used just now, which the pool hands out without a
	// ping (it pings one idle for a second first): the lone token
	// request's commit is sent to a database that has stopped, and its
	// outcome is unknown.
	h.waitRecovered(t, 5*time.Second)
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	paused = true
	checkUnavailable(t, calls[:1], sendAll(t, calls[:1]))
	checkUnavailable(t, calls, sendAll(t, calls))
	// A second round finds the writer still waiting for the first.
	checkUnavailable(t, calls, sendAll(t, calls))

	// The client_credentials commit was sent and never answered.
	logs := log.String()
	if !strings.Contains(logs, "commit outcome unknown") {
		t.Errorf("no commit logged as outcome unknown; log:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "commit outcome unknown") {
			continue
		}
		t.Logf("logged: %s", line)
		for _, want := range []string{`"request_id":"`, `"client_id":"deft-client"`, `"jti":"`} {
			if !strings.Contains(line, want) {
				t.Errorf("outcome unknown without %s: %s", want, line)
			}
		}
	}

	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	t.Logf("recovered %v after SIGCONT", h.waitRecovered(t, 30*time.Second).Round(time.Millisecond))
	checkChain(t, sts)
	if t.Failed() {
		t.Logf("server log:\n%s", log)
	}
}

// checkChain verifies the audit chain: whatever commits the stall cut
// short, none left a record half-written or a gap.
func checkChain(t *testing.T, sts *servertest.Server) {
	t.Helper()
	key, err := audit.DeriveKey(mustKEK(t, sts))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	heads, err := sts.Store.AuditHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		res, err := key.Verify(h.Instance, sts.Store.AuditChain(ctx, h.Instance), &h, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Errorf("audit chain %s: %v", h.Instance, res.Problems)
		}
	}
}

func mustKEK(t *testing.T, sts *servertest.Server) []byte {
	t.Helper()
	kek, err := keys.ReadKEKFile(filepath.Join(sts.Dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// TestPostgresReadOnly: a PostgreSQL server that answers but refuses
// writes (default_transaction_read_only, as a standby or a full disk
// would) makes the instance not ready, and ready again once it writes.
func TestPostgresReadOnly(t *testing.T) {
	ctx := context.Background()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	u, err := pg.CreateDatabase(ctx, "readonly")
	if err != nil {
		t.Fatal(err)
	}
	sts := servertest.Start(t, servertest.Options{Settings: settings,
		Storage: u})
	admin, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	set := func(on bool) {
		t.Helper()
		stmts := []string{"SET default_transaction_read_only = off", "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"}
		if on {
			stmts[1] = "ALTER SYSTEM SET default_transaction_read_only = on"
		}
		for _, q := range stmts {
			if _, err := admin.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	h := newHarness(t, sts)
	h.waitRecovered(t, 5*time.Second)
	if got := readyStatus(t, sts.URL); got != http.StatusOK {
		t.Fatalf("/readyz = %d at start", got)
	}
	set(true)
	waitReady(t, sts.URL, http.StatusServiceUnavailable, 15*time.Second)
	set(false)
	waitReady(t, sts.URL, http.StatusOK, 15*time.Second)
	h.waitRecovered(t, 5*time.Second)
}

func readyStatus(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

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
