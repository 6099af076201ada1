package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int64
	name    string // the file name
	sql     string
}

// migrations are the embedded migrations in order. Their names are
// NNNN_description.sql, numbered from 1 without gaps; a migration, once
// released, is never edited: a change is a new file.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for i, name := range names { // fs.Glob sorts
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v != int64(i+1) {
			panic(fmt.Sprintf("sqlite: migration %s: want the name %04d_description.sql", name, i+1))
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	return ms
}

// SchemaVersion is the schema version this build migrates to: the number of
// the last embedded migration.
func SchemaVersion() int64 { return migrations[len(migrations)-1].version }

// Migrate applies the migrations the database lacks, each recorded in the
// schema_migrations table. Open calls it, so `tillit migrate` is Open
// followed by Close; calling it again is a no-op.
//
// The migrations run in one IMMEDIATE transaction, which holds the write
// lock from the start: two processes opening a new file at once are
// serialised, and the second sees what the first applied. A database
// migrated by a newer build (a schema version this build does not know) is
// refused rather than used with a schema this code was not written for.
func (s *Store) Migrate(ctx context.Context) error {
	return s.write(ctx, func(tx *wtx) error {
		// Not prepared (tx.exec caches statements): a migration runs once,
		// and may hold several statements.
		exec := func(query string, args ...any) error {
			_, err := tx.conn.ExecContext(context.Background(), query, args...)
			return err
		}
		if err := exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		var current int64
		row := tx.conn.QueryRowContext(context.Background(), "SELECT coalesce(max(version), 0) FROM schema_migrations")
		if err := row.Scan(&current); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		if current > SchemaVersion() {
			return fmt.Errorf("sqlite: database schema version %d is newer than this build's %d", current, SchemaVersion())
		}
		for _, m := range migrations[current:] {
			if err := exec(m.sql); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
			if err := exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, micros(s.now())); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}
