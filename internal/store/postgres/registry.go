package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tillit-sts/tillit/internal/store"
)

// recordColumns are what scanRecord reads, in its order.
const recordColumns = "kind, key, doc, managed_by, version, created_at, updated_at"

func scanRecord(row pgx.Row) (store.Record, error) {
	var r store.Record
	m := &r.Meta
	if err := row.Scan(&r.Kind, &r.Key, &r.Doc, &m.ManagedBy, &m.Version, &m.CreatedAt, &m.UpdatedAt); err != nil {
		return store.Record{}, err
	}
	m.CreatedAt, m.UpdatedAt = utc(m.CreatedAt), utc(m.UpdatedAt)
	return r, nil
}

// Every registry write is one statement that also bumps registry_version,
// when and only when it changed a record: a reader sees the record and
// the new version together or neither. A write that changes nothing
// (a duplicate, a stale version) leaves the version alone.

const createRecord = `
WITH created AS (
	INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
	VALUES ($1, $2, $3, $4, 1, $5, $5)
	ON CONFLICT DO NOTHING
	RETURNING created_at
), bumped AS (
	UPDATE registry_version SET version = version + 1
	WHERE id = 1 AND EXISTS (SELECT FROM created)
)
SELECT created_at FROM created`

func (s *Store) CreateRecord(ctx context.Context, r store.Record) (store.Record, error) {
	if r.Kind == "" || r.Key == "" {
		return store.Record{}, fmt.Errorf("postgres: create %s: empty kind or key", r.Kind)
	}
	var created time.Time
	err := s.pool.QueryRow(ctx, createRecord, r.Kind, r.Key, r.Doc, r.Meta.ManagedBy, s.now()).Scan(&created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Record{}, fmt.Errorf("postgres: %s %q: %w", r.Kind, r.Key, store.ErrAlreadyExists)
	case err != nil:
		return store.Record{}, fmt.Errorf("postgres: create %s %q: %w", r.Kind, r.Key, err)
	}
	created = utc(created)
	r.Meta = store.Meta{ManagedBy: r.Meta.ManagedBy, Version: 1, CreatedAt: created, UpdatedAt: created}
	return r, nil
}

// updateRecord moves updated_at forward by at least a microsecond even
// when the clock did not, or went back, so that it orders the updates of a
// record.
const updateRecord = `
WITH updated AS (
	UPDATE registry
	SET doc = $3, managed_by = $4, version = version + 1,
		updated_at = greatest($6, updated_at + interval '1 microsecond')
	WHERE kind = $1 AND key = $2 AND version = $5
	RETURNING version, created_at, updated_at
), bumped AS (
	UPDATE registry_version SET version = version + 1
	WHERE id = 1 AND EXISTS (SELECT FROM updated)
)
SELECT version, created_at, updated_at FROM updated`

func (s *Store) UpdateRecord(ctx context.Context, r store.Record) (store.Record, error) {
	m := &r.Meta
	var version int64
	var createdAt, updatedAt time.Time
	err := s.pool.QueryRow(ctx, updateRecord, r.Kind, r.Key, r.Doc, m.ManagedBy, m.Version, s.now()).
		Scan(&version, &createdAt, &updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// Nothing was written; only the error remains to be chosen.
		var exists bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM registry WHERE kind = $1 AND key = $2)", r.Kind, r.Key).Scan(&exists); err != nil {
			return store.Record{}, fmt.Errorf("postgres: update %s %q: %w", r.Kind, r.Key, err)
		}
		if exists {
			return store.Record{}, fmt.Errorf("postgres: update %s %q at version %d: %w", r.Kind, r.Key, m.Version, store.ErrConflict)
		}
		return store.Record{}, fmt.Errorf("postgres: %s %q: %w", r.Kind, r.Key, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("postgres: update %s %q: %w", r.Kind, r.Key, err)
	}
	m.Version, m.CreatedAt, m.UpdatedAt = version, utc(createdAt), utc(updatedAt)
	return r, nil
}

const deleteRecord = `
WITH deleted AS (
	DELETE FROM registry WHERE kind = $1 AND key = $2
	RETURNING 1
), bumped AS (
	UPDATE registry_version SET version = version + 1
	WHERE id = 1 AND EXISTS (SELECT FROM deleted)
)
SELECT count(*) FROM deleted`

func (s *Store) DeleteRecord(ctx context.Context, kind, key string) error {
	var n int64
	if err := s.pool.QueryRow(ctx, deleteRecord, kind, key).Scan(&n); err != nil {
		return fmt.Errorf("postgres: delete %s %q: %w", kind, key, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s %q: %w", kind, key, store.ErrNotFound)
	}
	return nil
}

func (s *Store) Record(ctx context.Context, kind, key string) (store.Record, error) {
	r, err := scanRecord(s.pool.QueryRow(ctx, "SELECT "+recordColumns+" FROM registry WHERE kind = $1 AND key = $2", kind, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("postgres: %s %q: %w", kind, key, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("postgres: read %s %q: %w", kind, key, err)
	}
	return r, nil
}

// Records orders by key in byte order: the column's collation is "C".
func (s *Store) Records(ctx context.Context, kind string) ([]store.Record, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+recordColumns+" FROM registry WHERE kind = $1 ORDER BY key", kind)
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", kind, err)
	}
	defer rows.Close()
	var rs []store.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list %s: %w", kind, err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", kind, err)
	}
	return rs, nil
}

// RegistryVersion returns a counter bumped by every registry write, in the
// same transaction, by any Store on this database.
func (s *Store) RegistryVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT version FROM registry_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: registry version: %w", err)
	}
	return v, nil
}
