package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// database is the one database of a test binary; each test gets a schema
// in it. A schema costs about a millisecond to create and drop, where a
// database costs a tenth of a second (PostgreSQL copies a template and
// checkpoints), which over a conformance suite of a hundred-odd stores
// is most of its time.
const database = "tests"

// The package's one server, started by the first URL call of a test
// binary and stopped by Main.
var (
	mu       sync.Mutex
	inMain   bool      // Main is running the tests
	shared   *Server   // nil until started
	conn     *pgx.Conn // to database, for CREATE and DROP SCHEMA; guarded by mu
	startErr error     // why the start failed; it is not tried again
	seq      atomic.Int64
)

// Main runs the tests of a package whose tests call URL, then stops the
// server if one was started, and exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The server starts only when a test first asks for a URL, so a run of
// other tests in the package does not pay for it.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it runs the tests, stops the server and
// returns the exit code, for a TestMain that has more to clean up.
func Run(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()

	code := m.Run()

	mu.Lock()
	s, c := shared, conn
	shared, conn, inMain = nil, nil, false
	mu.Unlock()
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Close(ctx)
		cancel()
	}
	if s != nil {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// startShared starts the package's server and creates its database, once. The
// caller holds mu.
func startShared() error {
	switch {
	case !inMain:
		return errors.New("pgtest: call pgtest.Main(m) or pgtest.Run(m) from the package's TestMain, which stops the server after the tests")
	case shared != nil || startErr != nil:
		return startErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		startErr = err
		return err
	}
	u, err := s.CreateDatabase(ctx, database)
	if err == nil {
		conn, err = pgx.Connect(ctx, u)
	}
	if err != nil {
		s.Stop()
		startErr = fmt.Errorf("pgtest: %w", err)
		return startErr
	}
	shared = s
	return nil
}

// URL returns the connection URL of an empty schema of the test's own: its
// search_path names the schema, so that what a store creates goes there.
// The schema and everything in it is dropped when the test ends, after the
// cleanups the test registers later (such as closing a store). A server
// that cannot be started fails the test, saying what to install.
func URL(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", seq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	if err := execShared("CREATE SCHEMA " + ident); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := execShared("DROP SCHEMA " + ident + " CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(shared.URL(database))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name) // pgx sends unknown parameters to the server
	u.RawQuery = q.Encode()
	return u.String()
}

// execShared runs a statement on the package's database, starting the server on
// first use.
func execShared(sql string) error {
	mu.Lock()
	defer mu.Unlock()
	if err := startShared(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}
