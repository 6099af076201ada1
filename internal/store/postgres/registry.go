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

// Every registry write runs in a transaction that first bumps
// registry_version: the row lock orders the writers, so the versions
// commit in order and a reader that sees version v sees every write up to
// v. Each record keeps the version its write made (rev), read back with
// the subquery below. A refused write rolls the transaction back, version
// and all.

const bumpRegistryVersion = "UPDATE registry_version SET version = version + 1 WHERE id = 1"

const currentRev = "(SELECT version FROM registry_version WHERE id = 1)"

const createRecord = `
WITH created AS (
	INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at, rev)
	VALUES ($1, $2, $3, $4, 1, $5, $5, ` + currentRev + `)
	ON CONFLICT DO NOTHING
	RETURNING created_at
), undeleted AS (
	DELETE FROM registry_deleted WHERE kind = $1 AND key = $2 AND EXISTS (SELECT FROM created)
)
SELECT created_at FROM created`

// updateRecord moves updated_at forward by at least a microsecond even
// when the clock did not, or went back, so that it orders the updates of a
// record.
const updateRecord = `
UPDATE registry
SET doc = $3, managed_by = $4, version = version + 1,
	updated_at = greatest($6, updated_at + interval '1 microsecond'), rev = ` + currentRev + `
WHERE kind = $1 AND key = $2 AND version = $5
RETURNING version, created_at, updated_at`

const deleteRecord = `
WITH deleted AS (
	DELETE FROM registry WHERE kind = $1 AND key = $2
	RETURNING kind, key
), tombstone AS (
	INSERT INTO registry_deleted (kind, key, rev)
	SELECT kind, key, ` + currentRev + ` FROM deleted
	ON CONFLICT (kind, key) DO UPDATE SET rev = excluded.rev
)
SELECT count(*) FROM deleted`

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

// WriteRecords sends the batch's statements in one pipeline, inside one
// transaction: one round trip for the lot.
func (s *Store) WriteRecords(ctx context.Context, batch []store.RecordWrite) ([]store.Record, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	if len(batch) > store.MaxWriteBatch {
		return nil, fmt.Errorf("postgres: write batch of %d records is larger than %d", len(batch), store.MaxWriteBatch)
	}
	for i, w := range batch {
		if w.Record.Kind == "" || w.Record.Key == "" {
			return nil, &store.BatchError{Index: i, Err: fmt.Errorf("postgres: %s %s: empty kind or key", w.Op, w.Record.Kind)}
		}
		if w.Op < store.OpCreate || w.Op > store.OpDelete {
			return nil, &store.BatchError{Index: i, Err: fmt.Errorf("postgres: %v of %s %q: unknown operation", w.Op, w.Record.Kind, w.Record.Key)}
		}
	}
	now := s.now()
	if allCreates(batch) {
		return s.createRecords(ctx, batch, now)
	}
	out := make([]store.Record, len(batch))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue(bumpRegistryVersion)
		for _, w := range batch {
			r := w.Record
			switch w.Op {
			case store.OpCreate:
				b.Queue(createRecord, r.Kind, r.Key, r.Doc, r.Meta.ManagedBy, now)
			case store.OpUpdate:
				b.Queue(updateRecord, r.Kind, r.Key, r.Doc, r.Meta.ManagedBy, r.Meta.Version, now)
			case store.OpDelete:
				b.Queue(deleteRecord, r.Kind, r.Key)
			}
		}
		res := tx.SendBatch(ctx, &b)
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("postgres: bump registry version: %w", err)
		}
		failed, ferr := -1, error(nil)
		for i, w := range batch {
			if out[i], ferr = readWrite(res, w, now); ferr != nil {
				failed = i
				break
			}
		}
		if err := res.Close(); err != nil && ferr == nil {
			return fmt.Errorf("postgres: write registry records: %w", err)
		}
		if failed < 0 {
			return nil
		}
		r := batch[failed].Record
		if errors.Is(ferr, errNoUpdate) {
			// Nothing was written; only the error remains to be chosen.
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM registry WHERE kind = $1 AND key = $2)", r.Kind, r.Key).Scan(&exists); err != nil {
				ferr = fmt.Errorf("postgres: update %s %q: %w", r.Kind, r.Key, err)
			} else if exists {
				ferr = fmt.Errorf("postgres: update %s %q at version %d: %w", r.Kind, r.Key, r.Meta.Version, store.ErrConflict)
			} else {
				ferr = fmt.Errorf("postgres: %s %q: %w", r.Kind, r.Key, store.ErrNotFound)
			}
		}
		return &store.BatchError{Index: failed, Err: ferr}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// createRecords is the common case of a large batch, a first start's
// records, in one statement rather than one per record: the server's cost
// per statement, not the rows, made a 100,000-client first start wait
// seconds for PostgreSQL. Rows that meet an existing record (or an
// earlier one in the batch) are not returned; the first of them fails the
// batch with ErrAlreadyExists, as the record-by-record path would.
const createRecords = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(kind, key, doc, managed_by, i)
), created AS (
	INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at, rev)
	SELECT kind, key, doc, managed_by, 1, $5, $5, ` + currentRev + ` FROM input ORDER BY i
	ON CONFLICT DO NOTHING
	RETURNING kind, key, created_at
), undeleted AS (
	DELETE FROM registry_deleted d USING created c WHERE d.kind = c.kind AND d.key = c.key
)
SELECT kind, key, created_at FROM created`

func allCreates(batch []store.RecordWrite) bool {
	for _, w := range batch {
		if w.Op != store.OpCreate {
			return false
		}
	}
	return true
}

func (s *Store) createRecords(ctx context.Context, batch []store.RecordWrite, now time.Time) ([]store.Record, error) {
	n := len(batch)
	kinds, keys, docs, managedBy := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, w := range batch {
		kinds[i], keys[i], docs[i], managedBy[i] = w.Record.Kind, w.Record.Key, w.Record.Doc, w.Record.Meta.ManagedBy
	}
	type ref struct{ kind, key string }
	created := make(map[ref]time.Time, n)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, bumpRegistryVersion); err != nil {
			return fmt.Errorf("postgres: bump registry version: %w", err)
		}
		rows, err := tx.Query(ctx, createRecords, kinds, keys, docs, managedBy, now)
		if err != nil {
			return fmt.Errorf("postgres: create registry records: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r ref
			var at time.Time
			if err := rows.Scan(&r.kind, &r.key, &at); err != nil {
				return fmt.Errorf("postgres: create registry records: %w", err)
			}
			created[r] = utc(at)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: create registry records: %w", err)
		}
		if len(created) == n {
			return nil
		}
		// Roll back, naming the first record that was not created.
		seen := make(map[ref]bool, n)
		for i, w := range batch {
			r := ref{w.Record.Kind, w.Record.Key}
			if _, ok := created[r]; !ok || seen[r] {
				return &store.BatchError{Index: i, Err: fmt.Errorf("postgres: %s %q: %w", r.kind, r.key, store.ErrAlreadyExists)}
			}
			seen[r] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.Record, n)
	for i, w := range batch {
		at := created[ref{w.Record.Kind, w.Record.Key}]
		out[i] = w.Record
		out[i].Meta = store.Meta{ManagedBy: w.Record.Meta.ManagedBy, Version: 1, CreatedAt: at, UpdatedAt: at}
	}
	return out, nil
}

// errNoUpdate is an update that matched no row: WriteRecords finds out
// whether the record is missing or at another version.
var errNoUpdate = errors.New("postgres: no row updated")

// readWrite reads the result of w's statement.
func readWrite(res pgx.BatchResults, w store.RecordWrite, now time.Time) (store.Record, error) {
	r := w.Record
	switch w.Op {
	case store.OpCreate:
		var created time.Time
		err := res.QueryRow().Scan(&created)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return r, fmt.Errorf("postgres: %s %q: %w", r.Kind, r.Key, store.ErrAlreadyExists)
		case err != nil:
			return r, fmt.Errorf("postgres: create %s %q: %w", r.Kind, r.Key, err)
		}
		created = utc(created)
		r.Meta = store.Meta{ManagedBy: r.Meta.ManagedBy, Version: 1, CreatedAt: created, UpdatedAt: created}
		return r, nil
	case store.OpUpdate:
		var createdAt, updatedAt time.Time
		err := res.QueryRow().Scan(&r.Meta.Version, &createdAt, &updatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return r, errNoUpdate
		case err != nil:
			return r, fmt.Errorf("postgres: update %s %q: %w", r.Kind, r.Key, err)
		}
		r.Meta.CreatedAt, r.Meta.UpdatedAt = utc(createdAt), utc(updatedAt)
		return r, nil
	default:
		var n int64
		if err := res.QueryRow().Scan(&n); err != nil {
			return r, fmt.Errorf("postgres: delete %s %q: %w", r.Kind, r.Key, err)
		}
		if n == 0 {
			return r, fmt.Errorf("postgres: %s %q: %w", r.Kind, r.Key, store.ErrNotFound)
		}
		return r, nil
	}
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

// RecordChanges reads in one repeatable-read transaction: one snapshot of
// the database for the version and the changes.
func (s *Store) RecordChanges(ctx context.Context, since int64) ([]store.RecordChange, int64, error) {
	var changes []store.RecordChange
	var version int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT version FROM registry_version WHERE id = 1").Scan(&version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+recordColumns+`, rev, false FROM registry WHERE rev > $1
			UNION ALL SELECT kind, key, '', '', 0, 'epoch', 'epoch', rev, true FROM registry_deleted WHERE rev > $1
			ORDER BY rev, kind, key`, since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.RecordChange
			r, m := &c.Record, &c.Record.Meta
			if err := rows.Scan(&r.Kind, &r.Key, &r.Doc, &m.ManagedBy, &m.Version, &m.CreatedAt, &m.UpdatedAt, &c.At, &c.Deleted); err != nil {
				return err
			}
			if c.Deleted {
				*m = store.Meta{}
			} else {
				m.CreatedAt, m.UpdatedAt = utc(m.CreatedAt), utc(m.UpdatedAt)
			}
			changes = append(changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: registry changes: %w", err)
	}
	return changes, version, nil
}
