package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, tempDB(t), Options{AuditKey: storetest.AuditKey})
	})
}

func TestConformanceTampered(t *testing.T) {
	storetest.RunTampered(t, func(t *testing.T) storetest.Tampered {
		path := tempDB(t)
		opts := Options{AuditKey: storetest.AuditKey}
		return storetest.Tampered{
			Store: openTest(t, path, opts),
			Exec: func(t *testing.T, query string) {
				if _, err := rawDB(t, path).Exec(query); err != nil {
					t.Fatal(err)
				}
			},
			Reopen: func(t *testing.T) store.Store { return openTest(t, path, opts) },
		}
	})
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "tillit.db") }

// openTest opens a Store on path and closes it when t ends.
func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var (
	now = time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)
	bg  = context.Background()
)

func jti(key string) []store.JTI { return []store.JTI{{Key: key, Expires: now.Add(time.Minute)}} }

// TestTwoStores opens two Stores on one file, as serve and a CLI command in
// two processes would: each sees what the other wrote.
func TestTwoStores(t *testing.T) {
	path := tempDB(t)
	a, b := openTest(t, path, Options{}), openTest(t, path, Options{})

	if err := a.ConsumeJTIs(bg, now, jti("k1")); err != nil {
		t.Fatalf("consume through a: %v", err)
	}
	if err := b.ConsumeJTIs(bg, now, jti("k1")); !errors.Is(err, store.ErrReplay) {
		t.Errorf("consume through b: err = %v, want %v", err, store.ErrReplay)
	}

	before, err := b.RegistryVersion(bg)
	if err != nil {
		t.Fatalf("RegistryVersion: %v", err)
	}
	if _, err := store.Create(bg, a, store.APIKind, store.API{Audience: "nhn:deft", Name: "DEFT"}); err != nil {
		t.Fatalf("create api through a: %v", err)
	}
	if after, err := b.RegistryVersion(bg); err != nil || after == before {
		t.Errorf("RegistryVersion through b = %d, %v; want a change from %d", after, err, before)
	}
	if got, err := store.Get(bg, b, store.APIKind, "nhn:deft"); err != nil || got.Name != "DEFT" {
		t.Errorf("API through b = %+v, %v", got, err)
	}

	// Callers of both Stores race for one key: one wins across processes.
	var mu sync.Mutex
	wins, replays := 0, 0
	var wg sync.WaitGroup
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			err := s.ConsumeJTIs(bg, now, jti("shared"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrReplay):
				replays++
			default:
				t.Errorf("ConsumeJTIs: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || replays != 39 {
		t.Errorf("%d calls won and %d were replays, want 1 and 39", wins, replays)
	}
}

// TestOpenConcurrently opens a new file from several Stores at once, as
// processes starting together would: the migrations run exactly once.
func TestOpenConcurrently(t *testing.T) {
	path := tempDB(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(bg, path, Options{}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	checkMigrations(t, path)

	// Reopening a migrated file changes nothing and keeps the data.
	if _, err := store.Create(bg, stores[0], store.OrganizationKind, store.Organization{Number: "994598759"}); err != nil {
		t.Fatalf("CreateOrganisation: %v", err)
	}
	again := openTest(t, path, Options{})
	checkMigrations(t, path)
	if _, err := store.Get(bg, again, store.OrganizationKind, "994598759"); err != nil {
		t.Errorf("Organisation after reopening: %v", err)
	}
}

// checkMigrations fails unless every migration is recorded exactly once.
func checkMigrations(t *testing.T, path string) {
	t.Helper()
	db := rawDB(t, path)
	rows, err := db.Query("SELECT version, name FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v int64
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatalf("reading schema_migrations: %v", err)
		}
		got = append(got, fmt.Sprintf("%d %s", v, name))
	}
	var want []string
	for _, m := range migrations {
		want = append(want, fmt.Sprintf("%d %s", m.version, m.name))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations holds %q, want %q", got, want)
	}
}

// rawDB opens the file without a Store, as another program would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestNewerSchemaRefused(t *testing.T) {
	path := tempDB(t)
	s, err := Open(bg, path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	if _, err := rawDB(t, path).Exec("INSERT INTO schema_migrations VALUES (?, 'future.sql', 0)", SchemaVersion()+1); err != nil {
		t.Fatalf("recording a future migration: %v", err)
	}
	if s, err := Open(bg, path, Options{}); err == nil {
		s.Close()
		t.Fatalf("Open of a database with a newer schema succeeded")
	}
}

func TestClose(t *testing.T) {
	s, err := Open(bg, tempDB(t), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.ConsumeJTIs(bg, now, jti("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("ConsumeJTIs after Close: err = %v, want %v", err, ErrClosed)
	}
	if _, err := store.Create(bg, s, store.APIKind, store.API{Audience: "a"}); !errors.Is(err, ErrClosed) {
		t.Errorf("create api after Close: err = %v, want %v", err, ErrClosed)
	}
	if err := s.Ping(bg); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: err = %v, want %v", err, ErrClosed)
	}
	if _, err := store.List(bg, s, store.APIKind); err == nil {
		t.Errorf("APIs after Close succeeded")
	}
}

// TestCloseWhileWriting closes a Store under load: every caller gets an
// answer (none hangs), and those told nil were written.
func TestCloseWhileWriting(t *testing.T) {
	path := tempDB(t)
	s, err := Open(bg, path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.ConsumeJTIs(bg, now, jti(fmt.Sprint(i))) })
	}
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()

	check := openTest(t, path, Options{})
	for i, err := range errs {
		again := check.ConsumeJTIs(bg, now, jti(fmt.Sprint(i)))
		switch {
		case err == nil && !errors.Is(again, store.ErrReplay):
			t.Errorf("key %d: accepted before Close but not recorded: %v", i, again)
		case errors.Is(err, ErrClosed) && again != nil:
			t.Errorf("key %d: refused with ErrClosed but recorded: %v", i, again)
		case err != nil && !errors.Is(err, ErrClosed):
			t.Errorf("key %d: %v", i, err)
		}
	}
}

// TestCanceledWhileQueued cancels a call that waits behind a busy writer
// (in production: one waiting for another process's write lock): it returns
// at once and records nothing.
func TestCanceledWhileQueued(t *testing.T) {
	s := openTest(t, tempDB(t), Options{})

	// An op that keeps the writer busy until released.
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.write(bg, func(tx *wtx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started

	ctx, cancel := context.WithCancel(bg)
	queued := make(chan error, 1)
	go func() { queued <- s.ConsumeJTIs(ctx, now, jti("queued")) }()
	time.Sleep(20 * time.Millisecond) // let it queue
	cancel()
	select {
	case err := <-queued:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("queued call: err = %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("queued call did not return after its context was canceled")
	}

	close(release)
	if err := <-first; err != nil {
		t.Errorf("first op: %v", err)
	}
	if err := s.ConsumeJTIs(bg, now, jti("queued")); err != nil {
		t.Errorf("the canceled call's key was recorded: %v", err)
	}
}

// TestUpdatedAtMovesWithFrozenClock checks that UpdatedAt orders updates
// even when the clock does not move between them.
func TestUpdatedAtMovesWithFrozenClock(t *testing.T) {
	frozen := time.Date(2031, 5, 17, 10, 0, 0, 999, time.UTC)
	s := openTest(t, tempDB(t), Options{Now: func() time.Time { return frozen }})
	c, err := store.Create(bg, s, store.ClientKind, store.Client{ID: "c"})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	if want := frozen.Truncate(time.Microsecond); !c.CreatedAt.Equal(want) || !c.UpdatedAt.Equal(want) {
		t.Errorf("created at %v, updated at %v; want both %v", c.CreatedAt, c.UpdatedAt, want)
	}
	for i := range 3 {
		prev := c.UpdatedAt
		if c, err = store.Update(bg, s, store.ClientKind, c); err != nil {
			t.Fatalf("update client: %v", err)
		}
		if want := prev.Add(time.Microsecond); !c.UpdatedAt.Equal(want) {
			t.Errorf("update %d: UpdatedAt = %v, want %v", i+1, c.UpdatedAt, want)
		}
	}
}

func TestPragmas(t *testing.T) {
	tests := []struct {
		name            string
		synchronous     string
		wantSynchronous int64
	}{
		{"default", "", 2},
		{"full", SynchronousFull, 2},
		{"normal", SynchronousNormal, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, tempDB(t), Options{Synchronous: tt.synchronous, BusyTimeout: 1500 * time.Millisecond})
			var (
				journal                  string
				syncMode, fk, busy, rows int64
			)
			err := s.write(bg, func(tx *wtx) error {
				return errors.Join(
					tx.queryRow("PRAGMA journal_mode").Scan(&journal),
					tx.queryRow("PRAGMA synchronous").Scan(&syncMode),
					tx.queryRow("PRAGMA foreign_keys").Scan(&fk),
					tx.queryRow("PRAGMA busy_timeout").Scan(&busy),
				)
			})
			if err != nil {
				t.Fatalf("reading pragmas: %v", err)
			}
			if journal != "wal" || syncMode != tt.wantSynchronous || fk != 1 || busy != 1500 {
				t.Errorf("journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d; want wal %d 1 1500",
					journal, syncMode, fk, busy, tt.wantSynchronous)
			}
			// Read connections refuse writes.
			_, err = s.readDB.ExecContext(bg, "INSERT INTO jti VALUES ('x', 0)")
			if err == nil {
				t.Errorf("a read connection wrote")
			}
			if err := s.readDB.QueryRowContext(bg, "SELECT count(*) FROM jti_log").Scan(&rows); err != nil || rows != 0 {
				t.Errorf("jti rows = %d, %v; want 0", rows, err)
			}
		})
	}
}

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"unknown synchronous", Options{Synchronous: "off"}, `sqlite: synchronous "off": want "full" or "normal"`},
		{"negative read conns", Options{ReadConns: -1}, "sqlite: negative ReadConns or BusyTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(bg, tempDB(t), tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded")
			}
			if err.Error() != tt.wantErr {
				t.Errorf("err = %q, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestOddPath opens a file whose name holds characters that mean something
// in a URI.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag%20", "tillit.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, Options{})
	if err := s.ConsumeJTIs(bg, now, jti("k")); err != nil {
		t.Fatalf("ConsumeJTIs: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not where it was asked to be: %v", err)
	}
}

// batchTx opens a new database and returns a write connection on it that
// is not a Store's, to run commitBatch on directly, and a plain handle.
func batchTx(t *testing.T) (*wtx, *sql.DB) {
	t.Helper()
	path := tempDB(t)
	openTest(t, path, Options{}) // creates the schema
	db := rawDB(t, path)
	conn, err := db.Conn(bg)
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	tx := &wtx{conn: conn, stmts: map[string]*sql.Stmt{}}
	t.Cleanup(func() { tx.close(); conn.Close() })
	return tx, db
}

// bare is a Store with nothing but the writer's state, to run commitBatch
// on a connection of the test's own.
var bare = &Store{replay: newReplaySet()}

// insertOp records key as a jti, then returns fail.
func insertOp(key string, fail error) *op {
	return &op{ctx: bg, run: func(tx *wtx) error {
		if _, err := tx.exec("INSERT INTO jti_log (key, expires) VALUES (?, 1)", key); err != nil {
			return err
		}
		return fail
	}}
}

// jtiKeys lists the recorded jti keys.
func jtiKeys(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT key FROM jti_log ORDER BY key")
	if err != nil {
		t.Fatalf("reading jti: %v", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatalf("reading jti: %v", err)
		}
		keys = append(keys, k)
	}
	return keys
}

// TestBatchSavepoints checks that an op that fails takes back only what it
// wrote, and the ops around it are committed.
func TestBatchSavepoints(t *testing.T) {
	tx, db := batchTx(t)
	ops := []*op{insertOp("a", nil), insertOp("b", store.ErrReplay), insertOp("c", nil)}
	results := make([]error, len(ops))
	if err := bare.commitBatch(tx, ops, results); err != nil {
		t.Fatalf("commitBatch: %v", err)
	}
	for i, want := range []error{nil, store.ErrReplay, nil} {
		if !errors.Is(results[i], want) {
			t.Errorf("op %d: err = %v, want %v", i, results[i], want)
		}
	}
	if got, want := jtiKeys(t, db), []string{"a", "c"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("committed keys %q, want %q", got, want)
	}
}

// TestBatchAborted checks that when the transaction fails under an op (as
// SQLite rolls back by itself after a full disk or an I/O error), commitBatch
// fails, so that every caller of the batch gets the error, and the ops before
// it, which had succeeded, are not committed.
func TestBatchAborted(t *testing.T) {
	tx, db := batchTx(t)
	abort := &op{ctx: bg, run: func(tx *wtx) error {
		if _, err := tx.conn.ExecContext(bg, "ROLLBACK"); err != nil {
			return err
		}
		return errors.New("disk I/O error")
	}}
	ops := []*op{insertOp("a", nil), abort, insertOp("c", nil)}
	results := make([]error, len(ops))
	err := bare.commitBatch(tx, ops, results)
	if err == nil {
		t.Fatalf("commitBatch succeeded")
	}
	if want := `sqlite: write failed ("disk I/O error"), then rollback to savepoint: `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
	if got := jtiKeys(t, db); len(got) != 0 {
		t.Errorf("committed keys %q, want none", got)
	}
	// The connection is usable for the next batch.
	if err := bare.commitBatch(tx, []*op{insertOp("d", nil)}, make([]error, 1)); err != nil {
		t.Fatalf("next commitBatch: %v", err)
	}
	if got, want := jtiKeys(t, db), []string{"d"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("committed keys %q, want %q", got, want)
	}
}
