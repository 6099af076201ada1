package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tillit-sts/tillit/internal/store"
)

// registryColumns are what scanRecord reads, in its order.
const registryColumns = "doc, managed_by, version, created_at, updated_at"

func scanRecord[T any](k store.Kind[T], row pgx.Row) (T, error) {
	var (
		doc string
		m   store.Meta
	)
	if err := row.Scan(&doc, &m.ManagedBy, &m.Version, &m.CreatedAt, &m.UpdatedAt); err != nil {
		var zero T
		return zero, err
	}
	m.CreatedAt, m.UpdatedAt = utc(m.CreatedAt), utc(m.UpdatedAt)
	return k.Record(doc, m)
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

func create[T any](ctx context.Context, s *Store, k store.Kind[T], rec T) (T, error) {
	var zero T
	key := k.Key(&rec)
	if key == "" {
		return zero, fmt.Errorf("postgres: create %s: empty key", k.Name)
	}
	doc, err := k.Document(rec)
	if err != nil {
		return zero, err
	}
	m := k.Meta(&rec)
	var created time.Time
	err = s.pool.QueryRow(ctx, createRecord, k.Name, key, doc, m.ManagedBy, s.now()).Scan(&created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return zero, fmt.Errorf("postgres: %s %q: %w", k.Name, key, store.ErrAlreadyExists)
	case err != nil:
		return zero, fmt.Errorf("postgres: create %s %q: %w", k.Name, key, err)
	}
	created = utc(created)
	*m = store.Meta{ManagedBy: m.ManagedBy, Version: 1, CreatedAt: created, UpdatedAt: created}
	return rec, nil
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

func update[T any](ctx context.Context, s *Store, k store.Kind[T], rec T) (T, error) {
	var zero T
	key := k.Key(&rec)
	doc, err := k.Document(rec)
	if err != nil {
		return zero, err
	}
	m := k.Meta(&rec)
	var version int64
	var createdAt, updatedAt time.Time
	err = s.pool.QueryRow(ctx, updateRecord, k.Name, key, doc, m.ManagedBy, m.Version, s.now()).
		Scan(&version, &createdAt, &updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// Nothing was written; only the error remains to be chosen.
		var exists bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM registry WHERE kind = $1 AND key = $2)", k.Name, key).Scan(&exists); err != nil {
			return zero, fmt.Errorf("postgres: update %s %q: %w", k.Name, key, err)
		}
		if exists {
			return zero, fmt.Errorf("postgres: update %s %q at version %d: %w", k.Name, key, m.Version, store.ErrConflict)
		}
		return zero, fmt.Errorf("postgres: %s %q: %w", k.Name, key, store.ErrNotFound)
	}
	if err != nil {
		return zero, fmt.Errorf("postgres: update %s %q: %w", k.Name, key, err)
	}
	m.Version, m.CreatedAt, m.UpdatedAt = version, utc(createdAt), utc(updatedAt)
	return rec, nil
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

func remove[T any](ctx context.Context, s *Store, k store.Kind[T], key string) error {
	var n int64
	if err := s.pool.QueryRow(ctx, deleteRecord, k.Name, key).Scan(&n); err != nil {
		return fmt.Errorf("postgres: delete %s %q: %w", k.Name, key, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s %q: %w", k.Name, key, store.ErrNotFound)
	}
	return nil
}

func get[T any](ctx context.Context, s *Store, k store.Kind[T], key string) (T, error) {
	rec, err := scanRecord(k, s.pool.QueryRow(ctx, "SELECT "+registryColumns+" FROM registry WHERE kind = $1 AND key = $2", k.Name, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, fmt.Errorf("postgres: %s %q: %w", k.Name, key, store.ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("postgres: read %s %q: %w", k.Name, key, err)
	}
	return rec, nil
}

// list returns every record of a kind in the byte order of their keys
// (the column's collation is "C").
func list[T any](ctx context.Context, s *Store, k store.Kind[T]) ([]T, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+registryColumns+" FROM registry WHERE kind = $1 ORDER BY key", k.Name)
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", k.Name, err)
	}
	defer rows.Close()
	var recs []T
	for rows.Next() {
		rec, err := scanRecord(k, rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list %s: %w", k.Name, err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", k.Name, err)
	}
	return recs, nil
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
