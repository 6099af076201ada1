package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/store/postgres"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// runMigrate brings the schema of the configured store up to date. serve
// does the same when it starts, so the command is for operators who
// migrate before they roll out a new build, or who run serve as a database
// role that may not change the schema. It is safe while other instances
// run and when two migrate at once.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	sf := addStoreFlags(fs)
	setUsage(fs, "tillit migrate --config tillit.yaml | --dev",
		"Applies the schema migrations the configured store lacks (storage, or TILLIT_STORAGE).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	backend, target, err := cfg.StorageBackend()
	if err != nil {
		return err
	}
	switch backend {
	case config.BackendPostgres:
		applied, err := postgres.Migrate(ctx, target)
		if err != nil {
			return err
		}
		where := "PostgreSQL " + redactURL(target)
		if len(applied) == 0 {
			fmt.Fprintf(stdout, "%s: the schema is at version %d; nothing to apply.\n", where, postgres.SchemaVersion())
			return nil
		}
		fmt.Fprintf(stdout, "%s: applied %s; the schema is at version %d.\n", where, strings.Join(applied, ", "), postgres.SchemaVersion())
	case config.BackendSQLite:
		_, statErr := os.Stat(target)
		st, err := sqlite.Open(ctx, target, sqlite.Options{})
		if err != nil {
			return err
		}
		if err := st.Close(); err != nil {
			return err
		}
		// The SQLite backend migrates whenever it opens a file and does
		// not say what it applied; what it leaves is the latest schema.
		verb := "the schema is at"
		if errors.Is(statErr, os.ErrNotExist) {
			verb = "created the database with the schema at"
		}
		fmt.Fprintf(stdout, "SQLite %s: %s version %d.\n", target, verb, sqlite.SchemaVersion())
	default:
		return fmt.Errorf("storage backend %q has no migrations", backend)
	}
	return nil
}

// redactURL names a database without what may be secret in its URL: the
// password and the query, which may carry one too.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}
