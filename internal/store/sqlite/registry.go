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

const registryColumns = "doc, managed_by, version, created_at, updated_at"

// scanRecord reads the registryColumns of one row into a record.
func scanRecord[T any](k store.Kind[T], row scanner) (T, error) {
	var (
		doc                  string
		m                    store.Meta
		createdAt, updatedAt int64
	)
	if err := row.Scan(&doc, &m.ManagedBy, &m.Version, &createdAt, &updatedAt); err != nil {
		var zero T
		return zero, err
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return k.Record(doc, m)
}

// bumpRegistryVersion runs in the transaction of every registry write, so
// that a reader never sees a new record with the old version.
func bumpRegistryVersion(tx *wtx) error {
	if _, err := tx.exec("UPDATE registry_version SET version = version + 1 WHERE id = 1"); err != nil {
		return fmt.Errorf("sqlite: bump registry version: %w", err)
	}
	return nil
}

func create[T any](ctx context.Context, s *Store, k store.Kind[T], rec T) (T, error) {
	key := k.Key(&rec)
	if key == "" {
		var zero T
		return zero, fmt.Errorf("sqlite: create %s: empty key", k.Name)
	}
	doc, err := k.Document(rec)
	if err != nil {
		return rec, err
	}
	now := fromMicros(micros(s.now()))
	m := k.Meta(&rec)
	*m = store.Meta{ManagedBy: m.ManagedBy, Version: 1, CreatedAt: now, UpdatedAt: now}
	err = s.write(ctx, func(tx *wtx) error {
		// DO NOTHING rather than a constraint error: the error would
		// have to be told apart from others by the driver's codes.
		res, err := tx.exec(`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`,
			k.Name, key, doc, m.ManagedBy, micros(now), micros(now))
		if err != nil {
			return fmt.Errorf("sqlite: create %s %q: %w", k.Name, key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: create %s %q: %w", k.Name, key, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s %q: %w", k.Name, key, store.ErrAlreadyExists)
		}
		return bumpRegistryVersion(tx)
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return rec, nil
}

func update[T any](ctx context.Context, s *Store, k store.Kind[T], rec T) (T, error) {
	var zero T
	key := k.Key(&rec)
	doc, err := k.Document(rec)
	if err != nil {
		return zero, err
	}
	m := k.Meta(&rec)
	now := micros(s.now())
	var version, createdAt, updatedAt int64
	err = s.write(ctx, func(tx *wtx) error {
		// updated_at moves forward by at least a microsecond even when
		// the clock did not (or went back), so that it orders updates.
		err := tx.queryRow(`UPDATE registry
			SET doc = ?, managed_by = ?, version = version + 1, updated_at = max(?, updated_at + 1)
			WHERE kind = ? AND key = ? AND version = ?
			RETURNING version, created_at, updated_at`,
			doc, m.ManagedBy, now, k.Name, key, m.Version).Scan(&version, &createdAt, &updatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM registry WHERE kind = ? AND key = ?)", k.Name, key).Scan(&exists); err != nil {
				return fmt.Errorf("sqlite: update %s %q: %w", k.Name, key, err)
			}
			if exists {
				return fmt.Errorf("sqlite: update %s %q at version %d: %w", k.Name, key, m.Version, store.ErrConflict)
			}
			return fmt.Errorf("sqlite: %s %q: %w", k.Name, key, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: update %s %q: %w", k.Name, key, err)
		}
		return bumpRegistryVersion(tx)
	})
	if err != nil {
		return zero, err
	}
	m.Version, m.CreatedAt, m.UpdatedAt = version, fromMicros(createdAt), fromMicros(updatedAt)
	return rec, nil
}

func get[T any](ctx context.Context, s *Store, k store.Kind[T], key string) (T, error) {
	row := s.readDB.QueryRowContext(ctx, "SELECT "+registryColumns+" FROM registry WHERE kind = ? AND key = ?", k.Name, key)
	rec, err := scanRecord(k, row)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, fmt.Errorf("sqlite: %s %q: %w", k.Name, key, store.ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("sqlite: read %s %q: %w", k.Name, key, err)
	}
	return rec, nil
}

// list returns every record of a kind ordered by key. SQLite compares TEXT
// with memcmp, which is Go's byte order.
func list[T any](ctx context.Context, s *Store, k store.Kind[T]) ([]T, error) {
	rows, err := s.readDB.QueryContext(ctx, "SELECT "+registryColumns+" FROM registry WHERE kind = ? ORDER BY key", k.Name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", k.Name, err)
	}
	defer rows.Close()
	var recs []T
	for rows.Next() {
		rec, err := scanRecord(k, rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list %s: %w", k.Name, err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", k.Name, err)
	}
	return recs, nil
}

func remove[T any](ctx context.Context, s *Store, k store.Kind[T], key string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM registry WHERE kind = ? AND key = ?", k.Name, key)
		if err != nil {
			return fmt.Errorf("sqlite: delete %s %q: %w", k.Name, key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete %s %q: %w", k.Name, key, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s %q: %w", k.Name, key, store.ErrNotFound)
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

func (s *Store) CreateAPI(ctx context.Context, a store.API) (store.API, error) {
	return create(ctx, s, store.APIKind, a)
}

func (s *Store) UpdateAPI(ctx context.Context, a store.API) (store.API, error) {
	return update(ctx, s, store.APIKind, a)
}

func (s *Store) API(ctx context.Context, audience string) (store.API, error) {
	return get(ctx, s, store.APIKind, audience)
}

func (s *Store) APIs(ctx context.Context) ([]store.API, error) { return list(ctx, s, store.APIKind) }

func (s *Store) DeleteAPI(ctx context.Context, audience string) error {
	return remove(ctx, s, store.APIKind, audience)
}

func (s *Store) CreateOrganization(ctx context.Context, o store.Organization) (store.Organization, error) {
	return create(ctx, s, store.OrganizationKind, o)
}

func (s *Store) UpdateOrganization(ctx context.Context, o store.Organization) (store.Organization, error) {
	return update(ctx, s, store.OrganizationKind, o)
}

func (s *Store) Organization(ctx context.Context, number string) (store.Organization, error) {
	return get(ctx, s, store.OrganizationKind, number)
}

func (s *Store) Organizations(ctx context.Context) ([]store.Organization, error) {
	return list(ctx, s, store.OrganizationKind)
}

func (s *Store) DeleteOrganization(ctx context.Context, number string) error {
	return remove(ctx, s, store.OrganizationKind, number)
}

func (s *Store) CreateClientSystem(ctx context.Context, cs store.ClientSystem) (store.ClientSystem, error) {
	return create(ctx, s, store.ClientSystemKind, cs)
}

func (s *Store) UpdateClientSystem(ctx context.Context, cs store.ClientSystem) (store.ClientSystem, error) {
	return update(ctx, s, store.ClientSystemKind, cs)
}

func (s *Store) ClientSystem(ctx context.Context, id string) (store.ClientSystem, error) {
	return get(ctx, s, store.ClientSystemKind, id)
}

func (s *Store) ClientSystems(ctx context.Context) ([]store.ClientSystem, error) {
	return list(ctx, s, store.ClientSystemKind)
}

func (s *Store) DeleteClientSystem(ctx context.Context, id string) error {
	return remove(ctx, s, store.ClientSystemKind, id)
}

func (s *Store) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	return create(ctx, s, store.ClientKind, c)
}

func (s *Store) UpdateClient(ctx context.Context, c store.Client) (store.Client, error) {
	return update(ctx, s, store.ClientKind, c)
}

func (s *Store) Client(ctx context.Context, id string) (store.Client, error) {
	return get(ctx, s, store.ClientKind, id)
}

func (s *Store) Clients(ctx context.Context) ([]store.Client, error) {
	return list(ctx, s, store.ClientKind)
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return remove(ctx, s, store.ClientKind, id)
}

func (s *Store) CreateDelegation(ctx context.Context, d store.Delegation) (store.Delegation, error) {
	return create(ctx, s, store.DelegationKind, d)
}

func (s *Store) UpdateDelegation(ctx context.Context, d store.Delegation) (store.Delegation, error) {
	return update(ctx, s, store.DelegationKind, d)
}

func (s *Store) Delegation(ctx context.Context, organization, supplier string) (store.Delegation, error) {
	return get(ctx, s, store.DelegationKind, store.DelegationKey(organization, supplier))
}

func (s *Store) Delegations(ctx context.Context) ([]store.Delegation, error) {
	return list(ctx, s, store.DelegationKind)
}

func (s *Store) DeleteDelegation(ctx context.Context, organization, supplier string) error {
	return remove(ctx, s, store.DelegationKind, store.DelegationKey(organization, supplier))
}
