package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
)

var (
	now = time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)
	bg  = context.Background()
)

func jti(key string) []store.JTI { return []store.JTI{{Key: key, Expires: now.Add(time.Minute)}} }

// connect opens a plain connection to the database at url, for looking at
// or holding what a Store cannot.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(bg, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(bg) })
	return c
}

// TestConcurrentOpen starts several instances on a new database at once:
// the advisory lock lets one migrate while the others wait, and then find
// the work done.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.URL(t)
	const instances = 8
	var wg sync.WaitGroup
	errs := make([]error, instances)
	stores := make([]*Store, instances)
	for i := range instances {
		wg.Go(func() { stores[i], errs[i] = Open(bg, url, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	var names []string
	rows, err := connect(t, url).Query(bg, "SELECT name FROM schema_migrations ORDER BY version")
	if err == nil {
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := migrationNames(); !slices.Equal(names, want) {
		t.Errorf("schema_migrations holds %q, want %q once each", names, want)
	}
}

func migrationNames() []string {
	var names []string
	for _, m := range migrations {
		names = append(names, m.name)
	}
	return names
}

func TestMigrate(t *testing.T) {
	url := pgtest.URL(t)
	applied, err := Migrate(bg, url)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if want := migrationNames(); !slices.Equal(applied, want) {
		t.Errorf("first Migrate applied %q, want %q", applied, want)
	}
	if applied, err := Migrate(bg, url); err != nil || len(applied) != 0 {
		t.Errorf("second Migrate = %q, %v; want nothing applied", applied, err)
	}
	openTest(t, url, Options{}) // Open on a migrated database applies nothing and works

	// A database a newer build has migrated is refused, by Open and by
	// Migrate.
	if _, err := connect(t, url).Exec(bg, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'future.sql')", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("database schema version %d is newer than this build's %d", SchemaVersion()+1, SchemaVersion())
	if _, err := Migrate(bg, url); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Migrate on a newer schema: err = %v, want %q", err, want)
	}
	if s, err := Open(bg, url, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open on a newer schema: err = %v, want %q", err, want)
	}
}

// TestMigratedNeedsNoDDL runs a Store as a role that may read and write the
// tables but not create anything, as an operator may run `serve` while
// `tillit migrate` runs as the schema's owner.
func TestMigratedNeedsNoDDL(t *testing.T) {
	url := pgtest.URL(t)
	if _, err := Migrate(bg, url); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, url)
	role := fmt.Sprintf("app_%d", time.Now().UnixNano())
	var schema string
	if err := admin.QueryRow(bg, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	ident := pgx.Identifier{role}.Sanitize()
	for _, q := range []string{
		"CREATE ROLE " + ident + " LOGIN",
		"GRANT USAGE ON SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + ident,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + ident,
	} {
		if _, err := admin.Exec(bg, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		admin.Exec(bg, "DROP OWNED BY "+ident)
		admin.Exec(bg, "DROP ROLE "+ident)
	})
	appURL := strings.Replace(url, "postgres://postgres@", "postgres://"+role+"@", 1)
	s := openTest(t, appURL, Options{})
	if err := s.ConsumeJTIs(bg, now, jti("k")); err != nil {
		t.Errorf("ConsumeJTIs as %s: %v", role, err)
	}
	if _, err := store.Create(bg, s, store.APIKind, store.API{Audience: "nhn:deft"}); err != nil {
		t.Errorf("create api as %s: %v", role, err)
	}
}

// TestTwoStores opens two Stores on one database, as two instances would:
// each sees what the other wrote, and their callers racing for one key
// have exactly one winner.
func TestTwoStores(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openTest(t, url, Options{}), openTest(t, url, Options{})
	if _, err := store.Create(bg, a, store.APIKind, store.API{Audience: "nhn:deft", Name: "DEFT"}); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(bg, b, store.APIKind, "nhn:deft"); err != nil || got.Name != "DEFT" {
		t.Errorf("API through b = %+v, %v", got, err)
	}
	var wins, replays atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			switch err := s.ConsumeJTIs(bg, now, jti("shared")); {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrReplay):
				replays.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || replays.Load() != 39 {
		t.Errorf("%d wins and %d replays, want 1 and 39", wins.Load(), replays.Load())
	}
}

// TestJTIKeys checks keys that a text column or a btree index could not
// hold as they are: the backend stores their hashes.
func TestJTIKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{name: "NUL byte", key: "a\x00b"},
		{name: "invalid UTF-8", key: "\xff\xfe"},
		{name: "100 kB", key: strings.Repeat("k", 100_000)},
		{name: "empty", key: ""},
	}
	s := openTest(t, pgtest.URL(t), Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.ConsumeJTIs(bg, now, jti(tt.key)); err != nil {
				t.Fatalf("first use: %v", err)
			}
			var re *store.ReplayError
			err := s.ConsumeJTIs(bg, now, jti(tt.key))
			if !errors.As(err, &re) || re.Key != tt.key {
				t.Errorf("second use: err = %.100v, want a ReplayError naming the key", err)
			}
		})
	}
}

// TestJTIOppositeOrders has callers consume the same two keys in opposite
// orders at once. Inserting in caller order could deadlock (each holds
// the key the other waits for, and PostgreSQL aborts one with an error
// that is no replay); the backend inserts in hash order.
func TestJTIOppositeOrders(t *testing.T) {
	s := openTest(t, pgtest.URL(t), Options{})
	for round := range 20 {
		a, b := fmt.Sprintf("a-%d", round), fmt.Sprintf("b-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			keys := []store.JTI{{Key: a, Expires: now.Add(time.Minute)}, {Key: b, Expires: now.Add(time.Minute)}}
			if i%2 == 1 {
				keys[0], keys[1] = keys[1], keys[0]
			}
			wg.Go(func() { errs[i] = s.ConsumeJTIs(bg, now, keys) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrReplay):
				t.Fatalf("round %d caller %d: %v", round, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners", round, wins)
		}
	}
}

// TestJTIExpiryRoundedUp: the database keeps microseconds; an expiry
// between two microseconds is kept as the later one, so that the key is
// never free before its Expires.
func TestJTIExpiryRoundedUp(t *testing.T) {
	s := openTest(t, pgtest.URL(t), Options{})
	exp := now.Add(time.Minute + 500*time.Nanosecond)
	if err := s.ConsumeJTIs(bg, now, []store.JTI{{Key: "k", Expires: exp}}); err != nil {
		t.Fatal(err)
	}
	// At exp truncated to the microsecond the key has not expired.
	if err := s.ConsumeJTIs(bg, exp.Truncate(time.Microsecond), jti("k")); !errors.Is(err, store.ErrReplay) {
		t.Errorf("at %v, before Expires %v: err = %v, want %v", exp.Truncate(time.Microsecond), exp, err, store.ErrReplay)
	}
}

// TestRevokeWaitsForRotation holds a family's lock, as a rotation in
// progress does, and adds a token to the family under it. A revocation
// that starts meanwhile waits for the lock and must then revoke that
// token too: it reads the family only after the rotation has committed.
func TestRevokeWaitsForRotation(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(s *Store) error
	}{
		{name: "RevokeRefreshFamily", revoke: func(s *Store) error {
			_, err := s.RevokeRefreshFamily(bg, "fam")
			return err
		}},
		{name: "reuse of a rotated token in a decision", revoke: func(s *Store) error {
			_, err := s.CommitDecision(bg, now, store.Decision{
				Rotate: &store.Rotation{OldID: "rt-1", Next: refresh("reuse", "fam")},
				Audit:  auditRecord("sts", 1),
			})
			if !errors.Is(err, store.ErrRefreshReused) {
				return fmt.Errorf("err = %v, want %v", err, store.ErrRefreshReused)
			}
			return nil
		}},
		{name: "reuse of a rotated token", revoke: func(s *Store) error {
			err := s.RotateRefreshToken(bg, now, "rt-1", refresh("reuse", "fam"))
			if !errors.Is(err, store.ErrRefreshReused) {
				return fmt.Errorf("err = %v, want %v", err, store.ErrRefreshReused)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.URL(t)
			s := openTest(t, url, Options{AuditKey: storetest.AuditKey})
			if err := s.CreateRefreshToken(bg, refresh("rt-1", "fam")); err != nil {
				t.Fatal(err)
			}
			if err := s.RotateRefreshToken(bg, now, "rt-1", refresh("rt-2", "fam")); err != nil {
				t.Fatal(err)
			}

			// A rotation of rt-2 in progress on another connection.
			tx, err := connect(t, url).Begin(bg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(bg, lockFamily, refreshLockClass, "fam"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tt.revoke(s) }()
			select {
			case err := <-done:
				t.Fatalf("the revocation did not wait for the family lock: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			for _, q := range []string{
				"UPDATE refresh_token SET status = 'rotated', used_at = now() WHERE id = 'rt-2'",
				"INSERT INTO refresh_token (" + refreshColumns + ") VALUES ('rt-3', 'fam', 'c', '', '', now(), now() + interval '1 hour', 'active', NULL)",
			} {
				if _, err := tx.Exec(bg, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(bg); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"rt-1", "rt-2", "rt-3"} {
				if got, err := s.RefreshToken(bg, id); err != nil || got.Status != store.RefreshRevoked {
					t.Errorf("%s: status %q, %v; want revoked", id, got.Status, err)
				}
			}
		})
	}
}

func refresh(id, family string) store.RefreshToken {
	return store.RefreshToken{ID: id, FamilyID: family, ClientID: "c", Grant: []byte("{}"),
		IssuedAt: now, ExpiresAt: now.Add(10 * time.Hour)}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{name: "nothing listens", url: "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=5", wantErr: "postgres: "},
		{name: "bad URL", url: "postgres://u:hunter2@127.0.0.1:port/db", wantErr: "postgres: connection URL: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(bg, tt.url, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err = %q, want it to start with %q and hold no password", err, tt.wantErr)
			}
		})
	}
}

// roundTrips counts the times the client starts to write after it has
// read: one per round trip to the server.
type roundTrips struct {
	n       atomic.Int64
	writing atomic.Bool
}

type countingConn struct {
	net.Conn
	rt *roundTrips
}

func (c countingConn) Write(b []byte) (int, error) {
	if !c.rt.writing.Swap(true) {
		c.rt.n.Add(1)
	}
	return c.Conn.Write(b)
}

func (c countingConn) Read(b []byte) (int, error) {
	c.rt.writing.Store(false)
	return c.Conn.Read(b)
}

// TestRoundTrips pins the round trips of the token endpoint's calls, as
// docs/performance.md states them, on a warm connection (pgx prepares a
// statement in one more round trip the first time a connection runs it).
func TestRoundTrips(t *testing.T) {
	rt := &roundTrips{}
	s := openTest(t, pgtest.URL(t), Options{AuditKey: storetest.AuditKey, configure: func(c *pgxpool.Config) {
		c.MaxConns = 1 // one connection, so that the warm-up warms it
		dial := c.ConnConfig.DialFunc
		c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{conn, rt}, nil
		}
	}})
	for _, rt := range []store.RefreshToken{refresh("rt-0", "fam"), refresh("rd-0", "fam-d")} {
		if err := s.CreateRefreshToken(bg, rt); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		call func(i int) error
		want int64
	}{
		{name: "ConsumeJTIs, two keys", want: 1, call: func(i int) error {
			return s.ConsumeJTIs(bg, now, []store.JTI{
				{Key: fmt.Sprintf("a-%d", i), Expires: now.Add(time.Minute)},
				{Key: fmt.Sprintf("p-%d", i), Expires: now.Add(time.Minute)}})
		}},
		{name: "ConsumeJTIs refused", want: 1, call: func(i int) error {
			err := s.ConsumeJTIs(bg, now, []store.JTI{{Key: fmt.Sprintf("fresh-%d", i), Expires: now.Add(time.Minute)}, {Key: "a-0", Expires: now}})
			if !errors.Is(err, store.ErrReplay) {
				return fmt.Errorf("err = %v, want %v", err, store.ErrReplay)
			}
			return nil
		}},
		{name: "RotateRefreshToken", want: 1, call: func(i int) error {
			return s.RotateRefreshToken(bg, now, fmt.Sprintf("rt-%d", i), refresh(fmt.Sprintf("rt-%d", i+1), "fam"))
		}},
		{name: "CommitDecision, client_credentials", want: 1, call: func(i int) error {
			_, err := s.CommitDecision(bg, now, store.Decision{
				JTIs: []store.JTI{
					{Key: fmt.Sprintf("cc-a-%d", i), Expires: now.Add(time.Minute)},
					{Key: fmt.Sprintf("cc-p-%d", i), Expires: now.Add(time.Minute)}},
				Audit: auditRecord("sts", i),
			})
			return err
		}},
		{name: "CommitDecision, refresh rotation", want: 1, call: func(i int) error {
			_, err := s.CommitDecision(bg, now, store.Decision{
				JTIs:   []store.JTI{{Key: fmt.Sprintf("rr-a-%d", i), Expires: now.Add(time.Minute)}},
				Rotate: &store.Rotation{OldID: fmt.Sprintf("rd-%d", i), Next: refresh(fmt.Sprintf("rd-%d", i+1), "fam-d")},
				Audit:  auditRecord("sts", i),
			})
			return err
		}},
		{name: "CommitDecision, a refusal's record", want: 1, call: func(i int) error {
			_, err := s.CommitDecision(bg, now, store.Decision{Audit: auditRecord("sts", i)})
			return err
		}},
		{name: "CommitDecision, replayed jti", want: 1, call: func(i int) error {
			_, err := s.CommitDecision(bg, now, store.Decision{
				JTIs:  []store.JTI{{Key: fmt.Sprintf("fresh-d-%d", i), Expires: now.Add(time.Minute)}, {Key: "cc-a-0", Expires: now}},
				Audit: auditRecord("sts", i),
			})
			if !errors.Is(err, store.ErrReplay) {
				return fmt.Errorf("err = %v, want %v", err, store.ErrReplay)
			}
			return nil
		}},
		{name: "RegistryVersion", want: 1, call: func(int) error {
			_, err := s.RegistryVersion(bg)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(0); err != nil { // warm-up: prepares the statements
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				before := rt.n.Load()
				if err := tt.call(i); err != nil {
					t.Fatal(err)
				}
				if got := rt.n.Load() - before; got != tt.want {
					t.Errorf("call %d: %d round trips, want %d", i, got, tt.want)
				}
			}
		})
	}
}

func auditRecord(instance string, i int) store.AuditRecord {
	return store.AuditRecord{Instance: instance, Time: now, RequestID: fmt.Sprintf("req-%d", i), Endpoint: "token",
		GrantType: "client_credentials", ClientID: "c", Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"},
		TokenID: fmt.Sprintf("T%d", i), Outcome: audit.OutcomeIssued}
}

// verifyAudit fails unless instance's chain holds want records and is
// intact.
func verifyAudit(t *testing.T, s *Store, instance string, want int64) {
	t.Helper()
	heads, err := s.AuditHeads(bg)
	if err != nil {
		t.Fatal(err)
	}
	var head *store.AuditHead
	for i := range heads {
		if heads[i].Instance == instance {
			head = &heads[i]
		}
	}
	res, err := storetest.AuditKey.Verify(instance, s.AuditChain(bg, instance), head, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Records != want {
		t.Fatalf("chain %s: %d records, problems %v; want %d intact", instance, res.Records, res.Problems, want)
	}
}

// TestAuditSharedInstanceName has two Stores, as two processes would,
// append to one chain at once: two servers given the same instance name,
// which the configuration forbids but cannot prevent. Each Store's copy
// of the head goes stale whenever the other appends; the statement finds
// out, and the chain stays whole.
func TestAuditSharedInstanceName(t *testing.T) {
	url := pgtest.URL(t)
	a := openTest(t, url, Options{AuditKey: storetest.AuditKey})
	b := openTest(t, url, Options{AuditKey: storetest.AuditKey})
	const n = 40
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			// Two at a time per Store: the Store's writer batches them, the
			// other Store moves the head under them.
			if _, err := s.CommitDecision(bg, now, store.Decision{Audit: auditRecord("shared", i)}); err != nil {
				// Retries are bounded: under this much contention a
				// decision may give up, and must then have written
				// nothing.
				failed.Add(1)
				if !strings.Contains(err.Error(), "same instance name") {
					t.Errorf("decision %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	verifyAudit(t, a, "shared", int64(n)-int64(failed.Load()))
	t.Logf("%d of %d decisions gave up after %d attempts", failed.Load(), n, maxHeadRetries)

	// A head moved by another process while this Store was idle: the next
	// decision reads it again and appends after it.
	if _, err := b.CommitDecision(bg, now, store.Decision{Audit: auditRecord("shared", n)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CommitDecision(bg, now, store.Decision{Audit: auditRecord("shared", n+1)}); err != nil {
		t.Fatal(err)
	}
	verifyAudit(t, a, "shared", int64(n)+2-int64(failed.Load()))
}
