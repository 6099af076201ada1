package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Install is what the errors for missing binaries tell the reader to do.
const Install = "install PostgreSQL (Debian: apt-get install postgresql; .ci/run does this) so that initdb and postgres are on PATH or in /usr/lib/postgresql/<version>/bin"

// EnvFsync, set to "on", makes the server durable; see Start.
const EnvFsync = "TILLIT_PGTEST_FSYNC"

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// superuser is the name of the bootstrap superuser initdb creates. Tests
// connect as it, without a password (trust authentication on loopback).
const superuser = "postgres"

// Timeouts of the server's life cycle. initdb and the first start can be
// slow on a loaded CI machine; they are generous because a failure here
// fails every PostgreSQL test.
const (
	initdbTimeout = 2 * time.Minute
	readyTimeout  = time.Minute
	stopTimeout   = 30 * time.Second
)

// Server is a running PostgreSQL server in a temporary folder, listening
// only on 127.0.0.1. It trusts every connection from loopback: it is for
// tests only.
type Server struct {
	dir     string // the temporary folder: data/ and postgres.log
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the postgres process has exited
	waitErr error         // how it exited; read after exited is closed

	mu    sync.Mutex // serialises the admin connection
	admin *pgx.Conn  // to the postgres database, for CREATE and DROP DATABASE
}

// Start creates a database cluster in a new temporary folder and starts a
// server on it. Stop stops it and removes the folder.
//
// initdb and postgres refuse to run as root. When the test runs as root
// they run as the operating system user "postgres" (Debian's postgresql
// package creates it), which then owns the folder.
//
// The server runs without fsync: a test cluster is thrown away, so
// durability would only cost time. Benchmarks that must count the cost of
// a durable commit set the environment variable TILLIT_PGTEST_FSYNC=on,
// which leaves PostgreSQL's defaults (fsync, full_page_writes and
// synchronous_commit on) as a production server has them.
func Start(ctx context.Context) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tillit-pgtest-*")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.uid), int(cred.gid)); err != nil {
			return nil, fmt.Errorf("pgtest: give %s to the postgres user: %w", dir, err)
		}
	}
	if err := initdb(ctx, bin, dir, cred); err != nil {
		return nil, err
	}

	// The port is free when chosen but could be taken before postgres
	// binds it; a bind failure makes postgres exit, and another port is
	// tried.
	var s *Server
	for attempt := 1; ; attempt++ {
		s, err = start(ctx, bin, dir, cred)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errExited) {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// versionedBins is where Debian's postgresql packages put the programs, one
// folder per major version.
var versionedBins = "/usr/lib/postgresql/*/bin"

// binaries are the paths of the two PostgreSQL programs the tests run.
type binaries struct{ initdb, postgres string }

// findBinaries looks on PATH first, then in Debian's versioned folders,
// newest version first: Debian's postgresql package does not put the
// server programs on PATH.
func findBinaries() (binaries, error) {
	var b binaries
	if i, err := exec.LookPath("initdb"); err == nil {
		if p, err := exec.LookPath("postgres"); err == nil {
			return binaries{i, p}, nil
		}
	}
	dirs, _ := filepath.Glob(versionedBins)
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		b = binaries{filepath.Join(d, "initdb"), filepath.Join(d, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("pgtest: PostgreSQL's initdb and postgres were not found: %s", Install)
}

// versionOf reads the major version from /usr/lib/postgresql/<version>/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}

// runAs is the operating system user the PostgreSQL programs run as.
type runAs struct{ uid, gid uint32 }

// credential says whom to run the PostgreSQL programs as: nil for the
// current user, the postgres user when the test runs as root.
func credential() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if !canSwitchUser {
		return nil, errors.New("pgtest: initdb and postgres refuse to run as root, and switching to the postgres user is implemented for Linux only: run the tests as another user")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and initdb and postgres refuse to run as root; "+
			"there is no postgres user to run them as (%w): create one, or %s", err, Install)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	return &runAs{uid: uint32(uid), gid: uint32(gid)}, nil
}

// command prepares one of the PostgreSQL programs. It runs in dir, which
// the postgres user can enter, rather than in the test's folder, which it
// may not be able to.
func command(ctx context.Context, path, dir string, cred *runAs, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	// A C locale everywhere, whatever the machine's: initdb takes the
	// cluster's defaults from it.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = sysProcAttr(cred)
	return cmd
}

func initdb(ctx context.Context, bin binaries, dir string, cred *runAs) error {
	ctx, cancel := context.WithTimeout(ctx, initdbTimeout)
	defer cancel()
	// --no-sync: the cluster is thrown away after the tests. The C locale
	// and UTF-8 are what a production database may not have; the backend
	// declares its byte-order collation on the columns, so the tests do
	// not depend on this choice.
	cmd := command(ctx, bin.initdb, dir, cred,
		"--pgdata", filepath.Join(dir, "data"),
		"--username", superuser,
		"--auth", "trust",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w\n%s", bin.initdb, err, bytes.TrimSpace(out))
	}
	return nil
}

// errExited reports a postgres that stopped before it accepted a
// connection.
var errExited = errors.New("pgtest: postgres exited during start")

// start runs postgres on a new port and waits until it accepts
// connections.
func start(ctx context.Context, bin binaries, dir string, cred *runAs) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close() // postgres has its own copy of the descriptor

	// Not CommandContext: the server outlives the start's context.
	cmd := command(context.Background(), bin.postgres, dir, cred,
		"-D", filepath.Join(dir, "data"),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		// No Unix socket: /var/run/postgresql may not exist or be
		// writable, and tests connect over TCP.
		"-c", "unix_socket_directories=",
		"-c", "fsync="+onOff(os.Getenv(EnvFsync) == "on"),
		"-c", "full_page_writes="+onOff(os.Getenv(EnvFsync) == "on"),
		// Room for several stores, each with its pool, in one test.
		"-c", "max_connections=200",
		"-c", "log_min_messages=warning")
	cmd.Stdout = logFile
	cmd.Stderr = logFile

	s := &Server{dir: dir, port: port, cmd: cmd, exited: make(chan struct{})}
	if err := s.run(); err != nil {
		return nil, fmt.Errorf("pgtest: start %s: %w", bin.postgres, err)
	}
	if err := s.waitReady(ctx, logPath); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// run starts the process from a goroutine locked to its OS thread for as
// long as the process lives. With Pdeathsig (Linux) the kernel kills
// postgres when that thread ends, which happens only when the test binary
// dies: a test that times out or panics leaves no server behind.
func (s *Server) run() error {
	started := make(chan error, 1)
	go func() {
		lockThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.exited)
		// The thread stays locked, so the runtime ends it with the
		// goroutine: the process it was the parent of is gone anyway.
	}()
	return <-started
}

// freePort asks the kernel for a port that is free on 127.0.0.1 now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady connects until the server answers, it exits, or time is up.
func (s *Server) waitReady(ctx context.Context, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		connCtx, connCancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(connCtx, s.URL("postgres"))
		connCancel()
		if err == nil {
			s.admin = conn
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w (%v); its log:\n%s", errExited, s.waitErr, tail(logPath))
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres did not accept connections: %w (last: %v); its log:\n%s", ctx.Err(), err, tail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tail returns the end of a log file for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// URL is the connection URL of a database on the server.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, database)
}

// CreateDatabase creates an empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// template0 is never connected to, so copying it never waits for
	// another test's session, and holds nothing a test could have added.
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// DropDatabase drops a database, closing the sessions still connected to
// it, so that a long test run does not fill the disk.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down and removes its folder. It asks for a fast
// shutdown (SIGINT: sessions are ended, nothing is written out that is not
// needed) and kills the server if that takes too long.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.admin.Close(ctx)
		cancel()
		s.admin = nil
	}
	s.mu.Unlock()

	var errs []error
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("pgtest: stop postgres: %w", err))
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		errs = append(errs, fmt.Errorf("pgtest: postgres did not stop within %v; killed it", stopTimeout))
		s.kill()
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("pgtest: %w", err))
	}
	return errors.Join(errs...)
}

// Pause stops the server and every backend with SIGSTOP: connections stay
// open and new ones are accepted by the kernel, but nothing answers, as
// with a database host that hangs. Resume lets it go on. A paused server
// must be resumed before Stop.
func (s *Server) Pause() error {
	if err := signalAll(s.cmd.Process.Pid, sigStop); err != nil {
		return fmt.Errorf("pgtest: pause: %w", err)
	}
	return nil
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error {
	if err := signalAll(s.cmd.Process.Pid, sigCont); err != nil {
		return fmt.Errorf("pgtest: resume: %w", err)
	}
	return nil
}

// kill ends the server at once and waits for it.
func (s *Server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}
