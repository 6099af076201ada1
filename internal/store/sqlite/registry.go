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
// that a reader never sees a new record with the old version. It returns
// the new version, which the batch's records keep as their rev.
func bumpRegistryVersion(tx *wtx) (int64, error) {
	var v int64
	if err := tx.queryRow("UPDATE registry_version SET version = version + 1 WHERE id = 1 RETURNING version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: bump registry version: %w", err)
	}
	return v, nil
}

func (s *Store) CreateRecord(ctx context.Context, r store.Record) (store.Record, error) {
	return s.writeOne(ctx, store.RecordWrite{Op: store.OpCreate, Record: r})
}

func (s *Store) UpdateRecord(ctx context.Context, r store.Record) (store.Record, error) {
	return s.writeOne(ctx, store.RecordWrite{Op: store.OpUpdate, Record: r})
}

func (s *Store) DeleteRecord(ctx context.Context, kind, key string) error {
	_, err := s.writeOne(ctx, store.RecordWrite{Op: store.OpDelete, Record: store.Record{Kind: kind, Key: key}})
	return err
}

// writeOne is a batch of one, with the write's own error.
func (s *Store) writeOne(ctx context.Context, w store.RecordWrite) (store.Record, error) {
	rs, err := s.WriteRecords(ctx, []store.RecordWrite{w})
	if be := (*store.BatchError)(nil); errors.As(err, &be) {
		return store.Record{}, be.Err
	}
	if err != nil {
		return store.Record{}, err
	}
	return rs[0], nil
}

// WriteRecords runs the batch as one op of the writer: its savepoint makes
// it all-or-nothing, and the version is bumped once, first, so that every
// record of the batch carries the version it makes.
func (s *Store) WriteRecords(ctx context.Context, batch []store.RecordWrite) ([]store.Record, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	if len(batch) > store.MaxWriteBatch {
		return nil, fmt.Errorf("sqlite: write batch of %d records is larger than %d", len(batch), store.MaxWriteBatch)
	}
	for i, w := range batch {
		if w.Record.Kind == "" || w.Record.Key == "" {
			return nil, &store.BatchError{Index: i, Err: fmt.Errorf("sqlite: %s %s: empty kind or key", w.Op, w.Record.Kind)}
		}
	}
	now := micros(s.now())
	out := make([]store.Record, len(batch))
	err := s.write(ctx, func(tx *wtx) error {
		rev, err := bumpRegistryVersion(tx)
		if err != nil {
			return err
		}
		for i, w := range batch {
			if out[i], err = writeRecord(tx, w, now, rev); err != nil {
				return &store.BatchError{Index: i, Err: err}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func writeRecord(tx *wtx, w store.RecordWrite, now, rev int64) (store.Record, error) {
	r := w.Record
	switch w.Op {
	case store.OpCreate:
		// DO NOTHING rather than a constraint error: the error would
		// have to be told apart from others by the driver's codes.
		res, err := tx.exec(`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at, rev)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.Kind, r.Key, r.Doc, r.Meta.ManagedBy, now, now, rev)
		if err != nil {
			return r, fmt.Errorf("sqlite: create %s %q: %w", r.Kind, r.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return r, fmt.Errorf("sqlite: create %s %q: %w", r.Kind, r.Key, err)
		} else if n == 0 {
			return r, fmt.Errorf("sqlite: %s %q: %w", r.Kind, r.Key, store.ErrAlreadyExists)
		}
		if _, err := tx.exec("DELETE FROM registry_deleted WHERE kind = ? AND key = ?", r.Kind, r.Key); err != nil {
			return r, fmt.Errorf("sqlite: create %s %q: %w", r.Kind, r.Key, err)
		}
		at := fromMicros(now)
		r.Meta = store.Meta{ManagedBy: r.Meta.ManagedBy, Version: 1, CreatedAt: at, UpdatedAt: at}
		return r, nil

	case store.OpUpdate:
		// updated_at moves forward by at least a microsecond even when
		// the clock did not (or went back), so that it orders updates.
		var version, createdAt, updatedAt int64
		err := tx.queryRow(`UPDATE registry
			SET doc = ?, managed_by = ?, version = version + 1, updated_at = max(?, updated_at + 1), rev = ?
			WHERE kind = ? AND key = ? AND version = ?
			RETURNING version, created_at, updated_at`,
			r.Doc, r.Meta.ManagedBy, now, rev, r.Kind, r.Key, r.Meta.Version).Scan(&version, &createdAt, &updatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM registry WHERE kind = ? AND key = ?)", r.Kind, r.Key).Scan(&exists); err != nil {
				return r, fmt.Errorf("sqlite: update %s %q: %w", r.Kind, r.Key, err)
			}
			if exists {
				return r, fmt.Errorf("sqlite: update %s %q at version %d: %w", r.Kind, r.Key, r.Meta.Version, store.ErrConflict)
			}
			return r, fmt.Errorf("sqlite: %s %q: %w", r.Kind, r.Key, store.ErrNotFound)
		}
		if err != nil {
			return r, fmt.Errorf("sqlite: update %s %q: %w", r.Kind, r.Key, err)
		}
		r.Meta.Version, r.Meta.CreatedAt, r.Meta.UpdatedAt = version, fromMicros(createdAt), fromMicros(updatedAt)
		return r, nil

	case store.OpDelete:
		res, err := tx.exec("DELETE FROM registry WHERE kind = ? AND key = ?", r.Kind, r.Key)
		if err != nil {
			return r, fmt.Errorf("sqlite: delete %s %q: %w", r.Kind, r.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return r, fmt.Errorf("sqlite: delete %s %q: %w", r.Kind, r.Key, err)
		} else if n == 0 {
			return r, fmt.Errorf("sqlite: %s %q: %w", r.Kind, r.Key, store.ErrNotFound)
		}
		if _, err := tx.exec(`INSERT INTO registry_deleted (kind, key, rev) VALUES (?, ?, ?)
			ON CONFLICT (kind, key) DO UPDATE SET rev = excluded.rev`, r.Kind, r.Key, rev); err != nil {
			return r, fmt.Errorf("sqlite: delete %s %q: %w", r.Kind, r.Key, err)
		}
		return r, nil
	}
	return r, fmt.Errorf("sqlite: %v of %s %q: unknown operation", w.Op, r.Kind, r.Key)
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

// RegistryVersion returns a counter bumped by every registry write, in the
// same transaction, by any Store on this file.
func (s *Store) RegistryVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.readDB.QueryRowContext(ctx, "SELECT version FROM registry_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: registry version: %w", err)
	}
	return v, nil
}

// RecordChanges reads in one read transaction, which in WAL mode sees one
// committed state of the file.
func (s *Store) RecordChanges(ctx context.Context, since int64) ([]store.RecordChange, int64, error) {
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: registry changes: %w", err)
	}
	defer tx.Rollback()
	var version int64
	if err := tx.QueryRowContext(ctx, "SELECT version FROM registry_version WHERE id = 1").Scan(&version); err != nil {
		return nil, 0, fmt.Errorf("sqlite: registry changes: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+recordColumns+`, rev, 0 FROM registry WHERE rev > ?
		UNION ALL SELECT kind, key, '', '', 0, 0, 0, rev, 1 FROM registry_deleted WHERE rev > ?
		ORDER BY rev, kind, key`, since, since)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: registry changes: %w", err)
	}
	defer rows.Close()
	var changes []store.RecordChange
	for rows.Next() {
		var (
			c                    store.RecordChange
			createdAt, updatedAt int64
		)
		r := &c.Record
		if err := rows.Scan(&r.Kind, &r.Key, &r.Doc, &r.Meta.ManagedBy, &r.Meta.Version, &createdAt, &updatedAt, &c.At, &c.Deleted); err != nil {
			return nil, 0, fmt.Errorf("sqlite: registry changes: %w", err)
		}
		if !c.Deleted {
			r.Meta.CreatedAt, r.Meta.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: registry changes: %w", err)
	}
	return changes, version, nil
}
