package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/groupcommit"
)

// Values of Options.Synchronous.
const (
	// SynchronousFull fsyncs the write-ahead log at every commit: a write
	// that returned survives a crash of the process, the OS or the power.
	SynchronousFull = "full"
	// SynchronousNormal fsyncs only at checkpoints: a write that returned
	// survives a crash of the process, but the last commits before a crash
	// of the OS or a power loss may be lost. For the replay state that
	// means a jti could be accepted twice across such a crash.
	SynchronousNormal = "normal"
)

// ErrClosed is returned by writes and Ping on a Store after Close. Reads
// after Close fail with database/sql's "database is closed" error.
var ErrClosed = errors.New("sqlite: store closed")

// Options tune a Store. The zero value is the durable default.
type Options struct {
	// Synchronous is SynchronousFull (the default when empty) or
	// SynchronousNormal. It is the only durability knob: see the two
	// constants for what each risks. FULL costs an fsync per commit, which
	// group commit shares among the calls that arrive meanwhile.
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another
	// process (another Store on the same file) before it fails. Zero means
	// 5 s.
	BusyTimeout time.Duration
	// ReadConns is the number of read connections. Zero means 4.
	ReadConns int
	// AuditKey seals audit records (internal/audit). A Store without one
	// can do everything but CommitDecision.
	AuditKey audit.Key
	// CommitDelay is how long the writer may hold a commit open for the
	// decisions of callers that announced one (ExpectDecision) and have
	// not sent it yet. Zero commits what is queued at once, as before there was a
	// delay. See the package documentation.
	CommitDelay time.Duration
	// Now is the clock for the CreatedAt and UpdatedAt of registry records.
	// Nil means time.Now. ConsumeJTIs uses the now it is given instead.
	Now func() time.Time
}

// Store is a store.Store on one SQLite file. It is safe for concurrent use;
// several Stores, in one process or several, may share a file.
type Store struct {
	readDB  *sql.DB
	writeDB *sql.DB
	// wconn is the one write connection. Only the writer goroutine uses
	// it once Open has returned.
	wconn *sql.Conn
	now   func() time.Time

	ops        chan *op      // unbuffered: a send succeeds only while the writer runs
	quit       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer goroutine has returned
	closeOnce  sync.Once
	closeErr   error

	// replay is the writer goroutine's view of the unexpired jtis.
	replay *replaySet
	// audit is the writer goroutine's view of the audit chain heads in the
	// batch it runs; auditKey seals the records.
	audit    auditBatch
	auditKey audit.Key

	// pacer holds the writer's batch open for announced writes
	// (ExpectDecision, Options.CommitDelay).
	pacer *groupcommit.Pacer

	// stats feed the benchmark's ops/batch figure.
	batches, batchedOps atomic.Int64
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database at path and brings its schema up to
// date (see Migrate). Stores opened on the same file, by this process or
// another, see each other's writes.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	syncMode := SynchronousFull
	switch opts.Synchronous {
	case "", SynchronousFull:
	case SynchronousNormal:
		syncMode = SynchronousNormal
	default:
		return nil, fmt.Errorf("sqlite: synchronous %q: want %q or %q", opts.Synchronous, SynchronousFull, SynchronousNormal)
	}
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = 5 * time.Second
	}
	readConns := opts.ReadConns
	if readConns == 0 {
		readConns = 4
	}
	if readConns < 0 || busy < 0 {
		return nil, errors.New("sqlite: negative ReadConns or BusyTimeout")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	// The pragmas are in the DSN so that every connection gets them,
	// including ones database/sql opens again later. journal_mode=WAL is a
	// property of the file (set once, kept) and lets readers run while
	// another connection writes; synchronous only matters where commits
	// happen, on the write connection.
	pragmas := func(extra ...string) url.Values {
		v := url.Values{"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()),
			"foreign_keys(1)",
		}}
		v["_pragma"] = append(v["_pragma"], extra...)
		return v
	}
	write := pragmas("journal_mode(WAL)", "synchronous("+syncMode+")")
	read := pragmas("query_only(1)")

	s := &Store{
		now:        now,
		ops:        make(chan *op),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		replay:     newReplaySet(),
		auditKey:   opts.AuditKey,
		pacer:      groupcommit.New(opts.CommitDelay),
	}
	var err error
	if s.writeDB, err = sql.Open("sqlite", dsn(path, write)); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.writeDB.SetMaxOpenConns(1)
	if s.wconn, err = connectWhenFree(ctx, s.writeDB, busy); err != nil {
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if s.readDB, err = sql.Open("sqlite", dsn(path, read)); err != nil {
		s.wconn.Close()
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.readDB.SetMaxOpenConns(readConns)
	s.readDB.SetMaxIdleConns(readConns)

	go s.writer()
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connectWhenFree opens the write connection. Its pragmas switch a new file
// to WAL, which needs a lock that SQLite does not wait for with the busy
// handler; when several processes open a new file at once, one may get
// SQLITE_BUSY at once. It tries again until the busy timeout has passed.
func connectWhenFree(ctx context.Context, db *sql.DB, busy time.Duration) (*sql.Conn, error) {
	deadline := time.Now().Add(busy)
	for {
		conn, err := db.Conn(ctx)
		var se *sqlitedriver.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dsn builds a modernc.org/sqlite data source name. The file: form lets the
// path hold characters such as '?' and '#', escaped.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(), RawQuery: params.Encode()}
	return u.String()
}

// Ping checks that the database answers and has its schema.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	var v int64
	if err := s.readDB.QueryRowContext(ctx, "SELECT version FROM registry_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the writer after the batch it is running, then closes the
// database. Writes queued behind that batch fail with ErrClosed. Close is
// idempotent: later calls return what the first returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.writerDone
		s.closeErr = errors.Join(s.wconn.Close(), s.writeDB.Close(), s.readDB.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// micros converts a time to what the store keeps: unix microseconds, the
// precision storetest asks for and PostgreSQL's timestamptz has.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
