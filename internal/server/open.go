package server

import (
	"context"
	"strings"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/postgres"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// openStore opens the backend a storage setting names: a postgres:// or
// postgresql:// URL is PostgreSQL, anything else a SQLite file (a path or
// a sqlite: URL). Both bring their schema up to date before they return.
// The audit key, when not nil, lets the store seal audit records.
func openStore(ctx context.Context, storage string, auditKey audit.Key) (store.Store, error) {
	switch {
	case strings.HasPrefix(storage, "postgres://"), strings.HasPrefix(storage, "postgresql://"):
		return postgres.Open(ctx, storage, postgres.Options{AuditKey: auditKey})
	case strings.HasPrefix(storage, "sqlite:"):
		storage = strings.TrimPrefix(strings.TrimPrefix(storage, "sqlite:"), "//")
	}
	return sqlite.Open(ctx, storage, sqlite.Options{AuditKey: auditKey})
}
