package server

import (
	"context"
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
func openStore(ctx context.Context, storage string, auditKey audit.Key, commitDelay time.Duration) (store.Store, error) {
	switch {
	case isPostgres(storage):
		return postgres.Open(ctx, storage, postgres.Options{AuditKey: auditKey})
	case strings.HasPrefix(storage, "sqlite:"):
		storage = strings.TrimPrefix(strings.TrimPrefix(storage, "sqlite:"), "//")
	}
	return sqlite.Open(ctx, storage, sqlite.Options{AuditKey: auditKey, CommitDelay: commitDelay})
}
