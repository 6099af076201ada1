package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
)

// Options tune a Store. The zero value is the default.
type Options struct {
	// Now is the clock for the CreatedAt and UpdatedAt of registry
	// records. Nil means time.Now. ConsumeJTIs and RotateRefreshToken
	// use the now they are given instead.
	Now func() time.Time
	// AuditKey seals audit records (internal/audit). A Store without one
	// can do everything but CommitDecision.
	AuditKey audit.Key

	// configure, when set, changes the pool's configuration before the
	// pool is made. Tests use it to watch the connection.
	configure func(*pgxpool.Config)
}

// Store is a store.Store on one PostgreSQL database. It is safe for
// concurrent use; any number of Stores, in one process or many, may share
// the database.
type Store struct {
	pool     *pgxpool.Pool
	now      func() time.Time
	auditKey audit.Key
	chains   chains     // the audit chains this Store appends to, each with its writer
	writes   writeStats // what the writers did
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (postgres://user:password@host/db?
// sslmode=verify-full, or any form pgx accepts) and brings its schema up
// to date (see Migrate) before it returns.
//
// Durability is the server's: with PostgreSQL's default synchronous_commit
// = on, every write has been flushed to the server's write-ahead log on
// disk before its call returns. A server or URL that turns it off (for
// example options=-csynchronous_commit%3Doff) trades that for speed: the
// commits of the last moments before a crash of the database server are
// lost, and a jti spent in them could be accepted a second time.
//
// The pool's size and the like come from the URL's pgx parameters
// (pool_max_conns, default the greater of 4 and the number of CPUs). Each
// token takes a connection for one round trip, so a few connections serve
// many requests; raise pool_max_conns when the database is far away.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx takes care to leave the password out of its parse errors.
		return nil, fmt.Errorf("postgres: connection URL: %w", err)
	}
	if opts.configure != nil {
		opts.configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	_, err = migrate(ctx, conn.Conn())
	conn.Release()
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, now: opts.Now, auditKey: opts.AuditKey}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Ping checks that the database answers and has its schema.
func (s *Store) Ping(ctx context.Context) error {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT version FROM registry_version WHERE id = 1").Scan(&v); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close waits for the audit writers to finish the batches they are
// committing, refuses the decisions still queued with ErrClosed, and closes
// the pool's connections, after waiting for the calls that hold one. Calls
// after Close fail. Close is idempotent.
func (s *Store) Close() error {
	s.chains.close()
	s.pool.Close()
	return nil
}

// utc gives a time read from the database the form the store promises:
// pgx returns timestamptz in the local zone.
func utc(t time.Time) time.Time { return t.UTC() }

// SQLSTATE codes the backend tells apart.
const (
	codeUniqueViolation = "23505"
	// codeJTISpent is raised by tillit_jti_spent (migration 0001).
	codeJTISpent      = "TL001"
	codeDeadlock      = "40P01"
	codeSerialization = "40001"
)

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
