package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tillit-sts/tillit/internal/store"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const recordColumns = "kind, key, doc, managed_by, version, created_at, updated_at"

func scanRecord(row scanner) (store.Record, error) {
	var (
		r                    store.Record
		createdAt, updatedAt int64
	)
	if err := row.Scan(&r.Kind, &r.Key, &r.Doc, &r.Meta.ManagedBy, &r.Meta.Version, &createdAt, &updatedAt); err != nil {
		return store.Record{}, err
	}
	r.Meta.CreatedAt, r.Meta.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return r, nil
}

// bumpRegistryVersion runs in the transaction of every registry write, so
// that a reader never sees a new record with the old version.
func bumpRegistryVersion(tx *wtx) error {
	if _, err := tx.exec("UPDATE registry_version SET version = version + 1 WHERE id = 1"); err != nil {
		return fmt.Errorf("sqlite: bump registry version: %w", err)
	}
	return nil
}

func (s *Store) CreateRecord(ctx context.Context, r store.Record) (store.Record, error) {
	if r.Kind == "" || r.Key == "" {
		return store.Record{}, fmt.Errorf("sqlite: create %s: empty kind or key", r.Kind)
	}
	now := fromMicros(micros(s.now()))
	r.Meta = store.Meta{ManagedBy: r.Meta.ManagedBy, Version: 1, CreatedAt: now, UpdatedAt: now}
	err := s.write(ctx, func(tx *wtx) error {
		// DO NOTHING rather than a constraint error: the error would
		// have to be told apart from others by the driver's codes.
		res, err := tx.exec(`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`,
			r.Kind, r.Key, r.Doc, r.Meta.ManagedBy, micros(now), micros(now))
		if err != nil {
			return fmt.Errorf("sqlite: create %s %q: %w", r.Kind, r.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: create %s %q: %w", r.Kind, r.Key, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s %q: %w", r.Kind, r.Key, store.ErrAlreadyExists)
		}
		return bumpRegistryVersion(tx)
	})
	if err != nil {
		return store.Record{}, err
	}
	return r, nil
}

func (s *Store) UpdateRecord(ctx context.Context, r store.Record) (store.Record, error) {
	now := micros(s.now())
	var version, createdAt, updatedAt int64
	err := s.write(ctx, func(tx *wtx) error {
		// updated_at moves forward by at least a microsecond even when
		// the clock did not (or went back), so that it orders updates.
		err := tx.queryRow(`UPDATE registry
			SET doc = ?, managed_by = ?, version = version + 1, updated_at = max(?, updated_at + 1)
			WHERE kind = ? AND key = ? AND version = ?
			RETURNING version, created_at, updated_at`,
			r.Doc, r.Meta.ManagedBy, now, r.Kind, r.Key, r.Meta.Version).Scan(&version, &createdAt, &updatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM registry WHERE kind = ? AND key = ?)", r.Kind, r.Key).Scan(&exists); err != nil {
				return fmt.Errorf("sqlite: update %s %q: %w", r.Kind, r.Key, err)
			}
			if exists {
				return fmt.Errorf("sqlite: update %s %q at version %d: %w", r.Kind, r.Key, r.Meta.Version, store.ErrConflict)
			}
			return fmt.Errorf("sqlite: %s %q: %w", r.Kind, r.Key, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: update %s %q: %w", r.Kind, r.Key, err)
		}
		return bumpRegistryVersion(tx)
	})
	if err != nil {
		return store.Record{}, err
	}
	r.Meta.Version, r.Meta.CreatedAt, r.Meta.UpdatedAt = version, fromMicros(createdAt), fromMicros(updatedAt)
	return r, nil
}

func (s *Store) Record(ctx context.Context, kind, key string) (store.Record, error) {
	row := s.readDB.QueryRowContext(ctx, "SELECT "+recordColumns+" FROM registry WHERE kind = ? AND key = ?", kind, key)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("sqlite: %s %q: %w", kind, key, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: read %s %q: %w", kind, key, err)
	}
	return r, nil
}

// Records orders by key with SQLite's TEXT comparison, memcmp, which is
// Go's byte order.
func (s *Store) Records(ctx context.Context, kind string) ([]store.Record, error) {
	rows, err := s.readDB.QueryContext(ctx, "SELECT "+recordColumns+" FROM registry WHERE kind = ? ORDER BY key", kind)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", kind, err)
	}
	defer rows.Close()
	var rs []store.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list %s: %w", kind, err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", kind, err)
	}
	return rs, nil
}

func (s *Store) DeleteRecord(ctx context.Context, kind, key string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM registry WHERE kind = ? AND key = ?", kind, key)
		if err != nil {
			return fmt.Errorf("sqlite: delete %s %q: %w", kind, key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete %s %q: %w", kind, key, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s %q: %w", kind, key, store.ErrNotFound)
		}
		return bumpRegistryVersion(tx)
	})
}

// RegistryVersion returns a counter bumped by every registry write, in the
// same transaction, by any Store on this file.
func (s *Store) RegistryVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.readDB.QueryRowContext(ctx, "SELECT version FROM registry_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: registry version: %w", err)
	}
	return v, nil
}
