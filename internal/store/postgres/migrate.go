package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded migration file, NNNN_description.sql. The
// files are numbered from 1 without gaps; one that was released is never
// edited: a change is a new file.
type migration struct {
	version int64
	name    string
	sql     string
}

var migrations = loadMigrations()

func loadMigrations() []migration {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql") // sorted
	if err != nil {
		panic(err)
	}
	ms := make([]migration, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		prefix, _, _ := strings.Cut(base, "_")
		if v, err := strconv.ParseInt(prefix, 10, 64); err != nil || v != int64(i+1) || len(prefix) != 4 {
			panic(fmt.Sprintf("postgres: migration %s: want the name %04d_description.sql", name, i+1))
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: int64(i + 1), name: base, sql: string(b)})
	}
	return ms
}

// SchemaVersion is the schema version this build migrates to: the number
// of its last migration.
func SchemaVersion() int64 { return int64(len(migrations)) }

// migrateLock is the key of the advisory lock that serialises migrations:
// "tillit" in ASCII. Advisory locks with one bigint key and with two int
// keys (refreshLockClass) do not collide.
const migrateLock int64 = 0x74696c6c6974

// Migrate brings the schema of the database at url up to date, as Open
// does, and returns the names of the migrations it applied: none when the
// schema was current. It is `tillit migrate`.
func Migrate(ctx context.Context, url string) (applied []string, err error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: connection URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return migrate(ctx, conn)
}

// migrate applies the migrations the database lacks, in one transaction,
// each recorded in schema_migrations. The transaction first takes an
// advisory lock, so that instances starting at once on a new database
// apply them one after the other: the second finds the work done. A
// database migrated by a newer build is refused rather than used with a
// schema this code was not written for.
//
// A database that is up to date needs no privilege beyond reading
// schema_migrations: instances may run as a role that cannot change the
// schema, with `tillit migrate` run as its owner.
func migrate(ctx context.Context, conn *pgx.Conn) (applied []string, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
		return nil, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (
			version    bigint      PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return nil, fmt.Errorf("postgres: migrate: %w", err)
		}
	}
	var current int64
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if current > SchemaVersion() {
		return nil, fmt.Errorf("postgres: database schema version %d is newer than this build's %d", current, SchemaVersion())
	}
	for _, m := range migrations[current:] {
		// No arguments: pgx sends it as a simple query, which may hold
		// several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("postgres: migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return nil, fmt.Errorf("postgres: migration %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return applied, nil
}
