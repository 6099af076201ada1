package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/postgres"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// Procs is the GOMAXPROCS to run a server on storage with, given the
// runtime's default and the CPUs the process may run on. SQLite commits in
// this process: its writer goroutine sits in fsync for most of a
// millisecond per commit, and a goroutine in a system call keeps its P
// until the runtime's monitor hands the P on, which under a steady load it
// mostly does too late (its wake-ups stretch out while it finds nothing to
// do). With as many Ps as cores, a core then idles through each fsync:
// about a fifth of the machine at 1,000 commits/s. One P more keeps the
// cores busy meanwhile (docs/performance.md: a quarter more tokens/s with
// RS256 tokens, a tenth more with ES256).
//
// Not when the default is below the CPUs: the runtime lowers it to a
// container's CPU quota, and a P more than the quota would get the process
// throttled for the rest of each quota period, which costs far more than
// the idle core. Nor with PostgreSQL, which syncs in its own processes.
func Procs(storage string, def, cpus int) int {
	if isPostgres(storage) || def < cpus {
		return def
	}
	return def + 1
}

func isPostgres(storage string) bool {
	return strings.HasPrefix(storage, "postgres://") || strings.HasPrefix(storage, "postgresql://")
}

// openStore opens the backend a storage setting names: a postgres:// or
// postgresql:// URL is PostgreSQL, anything else a SQLite file (a path or
// a sqlite: URL). Both bring their schema up to date before they return.
// The audit key, when not nil, lets the store seal audit records.
//
// With create, a SQLite file's missing folder is created (mode 0700: the
// database holds the sealed keys and the audit log), as serve does on its
// first start; without it, a missing folder is an error that names it, so
// that a command pointed at the wrong configuration does not leave an empty
// database behind.
func openStore(ctx context.Context, storage string, auditKey audit.Key, commitDelay time.Duration, create bool) (store.Store, error) {
	if isPostgres(storage) {
		return postgres.Open(ctx, storage, postgres.Options{AuditKey: auditKey})
	}
	file := strings.TrimPrefix(strings.TrimPrefix(storage, "sqlite:"), "//")
	if err := sqliteFolder(file, create); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, file, sqlite.Options{AuditKey: auditKey, CommitDelay: commitDelay})
}

// sqliteFolder checks that the folder of a SQLite file exists, creating
// it when create is set.
func sqliteFolder(file string, create bool) error {
	if file == "" || strings.HasPrefix(file, ":memory:") || strings.HasPrefix(file, "file:") {
		return nil
	}
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("sqlite: %s is not a folder (storage %s)", dir, file)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sqlite: the database's folder: %w", err)
	case !create:
		return fmt.Errorf("sqlite: the folder %s does not exist (storage %s); 'tillit serve' creates it on its first start", dir, file)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: create the database's folder: %w", err)
	}
	return nil
}
