package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/tillit-sts/tillit/internal/store"
)

// kind describes one kind of registry record. All kinds share the registry
// table; the kind column keeps their keys apart.
type kind[T any] struct {
	name string // the kind column, also used in error messages
	key  func(*T) string
	meta func(*T) *store.Meta
}

var (
	apiKind = kind[store.API]{"api",
		func(r *store.API) string { return r.Audience },
		func(r *store.API) *store.Meta { return &r.Meta }}
	organisationKind = kind[store.Organisation]{"organisation",
		func(r *store.Organisation) string { return r.Number },
		func(r *store.Organisation) *store.Meta { return &r.Meta }}
	clientSystemKind = kind[store.ClientSystem]{"client system",
		func(r *store.ClientSystem) string { return r.ID },
		func(r *store.ClientSystem) *store.Meta { return &r.Meta }}
	clientKind = kind[store.Client]{"client",
		func(r *store.Client) string { return r.ID },
		func(r *store.Client) *store.Meta { return &r.Meta }}
	delegationKind = kind[store.Delegation]{"delegation",
		func(r *store.Delegation) string { return delegationKey(r.Organisation, r.Supplier) },
		func(r *store.Delegation) *store.Meta { return &r.Meta }}
)

// delegationKey joins the two organisation numbers of a delegation. The tab
// sorts below every printable character, so ordering by the key orders by
// organisation, then supplier. An empty organisation makes the whole key
// empty, which create refuses.
func delegationKey(organisation, supplier string) string {
	if organisation == "" {
		return ""
	}
	return organisation + "\t" + supplier
}

// metaFields are the JSON names of store.Meta's fields, which the registry
// keeps in columns and leaves out of the document.
var metaFields = func() []string {
	var names []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[store.Meta]()) {
		names = append(names, f.Name)
	}
	return names
}()

// encodeDoc returns the record as a JSON object without its Meta. Fields
// are stored by their Go names, so a field added to a record later is
// simply absent (its zero value) in older documents: no migration. Renaming
// a field is different: old documents would silently lose its value, so a
// rename needs a json tag with the old name or a migration.
func encodeDoc[T any](k kind[T], rec T) (string, error) {
	*k.meta(&rec) = store.Meta{}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("sqlite: encode %s: %w", k.name, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return "", fmt.Errorf("sqlite: encode %s: %w", k.name, err)
	}
	for _, f := range metaFields {
		delete(fields, f)
	}
	if b, err = json.Marshal(fields); err != nil {
		return "", fmt.Errorf("sqlite: encode %s: %w", k.name, err)
	}
	return string(b), nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const registryColumns = "doc, managed_by, version, created_at, updated_at"

// scanRecord reads the registryColumns of one row into a record.
func scanRecord[T any](k kind[T], row scanner) (T, error) {
	var (
		rec                  T
		doc                  string
		m                    store.Meta
		createdAt, updatedAt int64
	)
	if err := row.Scan(&doc, &m.ManagedBy, &m.Version, &createdAt, &updatedAt); err != nil {
		return rec, err
	}
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		return rec, fmt.Errorf("sqlite: decode %s: %w", k.name, err)
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	*k.meta(&rec) = m
	return rec, nil
}

// bumpRegistryVersion runs in the transaction of every registry write, so
// that a reader never sees a new record with the old version.
func bumpRegistryVersion(tx *wtx) error {
	if _, err := tx.exec("UPDATE registry_version SET version = version + 1 WHERE id = 1"); err != nil {
		return fmt.Errorf("sqlite: bump registry version: %w", err)
	}
	return nil
}

func create[T any](ctx context.Context, s *Store, k kind[T], rec T) (T, error) {
	key := k.key(&rec)
	if key == "" {
		var zero T
		return zero, fmt.Errorf("sqlite: create %s: empty key", k.name)
	}
	doc, err := encodeDoc(k, rec)
	if err != nil {
		return rec, err
	}
	now := fromMicros(micros(s.now()))
	m := k.meta(&rec)
	*m = store.Meta{ManagedBy: m.ManagedBy, Version: 1, CreatedAt: now, UpdatedAt: now}
	err = s.write(ctx, func(tx *wtx) error {
		// DO NOTHING rather than a constraint error: the error would
		// have to be told apart from others by the driver's codes.
		res, err := tx.exec(`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`,
			k.name, key, doc, m.ManagedBy, micros(now), micros(now))
		if err != nil {
			return fmt.Errorf("sqlite: create %s %q: %w", k.name, key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: create %s %q: %w", k.name, key, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s %q: %w", k.name, key, store.ErrAlreadyExists)
		}
		return bumpRegistryVersion(tx)
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return rec, nil
}

func update[T any](ctx context.Context, s *Store, k kind[T], rec T) (T, error) {
	var zero T
	key := k.key(&rec)
	doc, err := encodeDoc(k, rec)
	if err != nil {
		return zero, err
	}
	m := k.meta(&rec)
	now := micros(s.now())
	var version, createdAt, updatedAt int64
	err = s.write(ctx, func(tx *wtx) error {
		// updated_at moves forward by at least a microsecond even when
		// the clock did not (or went back), so that it orders updates.
		err := tx.queryRow(`UPDATE registry
			SET doc = ?, managed_by = ?, version = version + 1, updated_at = max(?, updated_at + 1)
			WHERE kind = ? AND key = ? AND version = ?
			RETURNING version, created_at, updated_at`,
			doc, m.ManagedBy, now, k.name, key, m.Version).Scan(&version, &createdAt, &updatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM registry WHERE kind = ? AND key = ?)", k.name, key).Scan(&exists); err != nil {
				return fmt.Errorf("sqlite: update %s %q: %w", k.name, key, err)
			}
			if exists {
				return fmt.Errorf("sqlite: update %s %q at version %d: %w", k.name, key, m.Version, store.ErrConflict)
			}
			return fmt.Errorf("sqlite: %s %q: %w", k.name, key, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: update %s %q: %w", k.name, key, err)
		}
		return bumpRegistryVersion(tx)
	})
	if err != nil {
		return zero, err
	}
	m.Version, m.CreatedAt, m.UpdatedAt = version, fromMicros(createdAt), fromMicros(updatedAt)
	return rec, nil
}

func get[T any](ctx context.Context, s *Store, k kind[T], key string) (T, error) {
	row := s.readDB.QueryRowContext(ctx, "SELECT "+registryColumns+" FROM registry WHERE kind = ? AND key = ?", k.name, key)
	rec, err := scanRecord(k, row)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, fmt.Errorf("sqlite: %s %q: %w", k.name, key, store.ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("sqlite: read %s %q: %w", k.name, key, err)
	}
	return rec, nil
}

// list returns every record of a kind ordered by key. SQLite compares TEXT
// with memcmp, which is Go's byte order.
func list[T any](ctx context.Context, s *Store, k kind[T]) ([]T, error) {
	rows, err := s.readDB.QueryContext(ctx, "SELECT "+registryColumns+" FROM registry WHERE kind = ? ORDER BY key", k.name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", k.name, err)
	}
	defer rows.Close()
	var recs []T
	for rows.Next() {
		rec, err := scanRecord(k, rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list %s: %w", k.name, err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", k.name, err)
	}
	return recs, nil
}

func remove[T any](ctx context.Context, s *Store, k kind[T], key string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM registry WHERE kind = ? AND key = ?", k.name, key)
		if err != nil {
			return fmt.Errorf("sqlite: delete %s %q: %w", k.name, key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete %s %q: %w", k.name, key, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s %q: %w", k.name, key, store.ErrNotFound)
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
	return create(ctx, s, apiKind, a)
}

func (s *Store) UpdateAPI(ctx context.Context, a store.API) (store.API, error) {
	return update(ctx, s, apiKind, a)
}

func (s *Store) API(ctx context.Context, audience string) (store.API, error) {
	return get(ctx, s, apiKind, audience)
}

func (s *Store) APIs(ctx context.Context) ([]store.API, error) { return list(ctx, s, apiKind) }

func (s *Store) DeleteAPI(ctx context.Context, audience string) error {
	return remove(ctx, s, apiKind, audience)
}

func (s *Store) CreateOrganisation(ctx context.Context, o store.Organisation) (store.Organisation, error) {
	return create(ctx, s, organisationKind, o)
}

func (s *Store) UpdateOrganisation(ctx context.Context, o store.Organisation) (store.Organisation, error) {
	return update(ctx, s, organisationKind, o)
}

func (s *Store) Organisation(ctx context.Context, number string) (store.Organisation, error) {
	return get(ctx, s, organisationKind, number)
}

func (s *Store) Organisations(ctx context.Context) ([]store.Organisation, error) {
	return list(ctx, s, organisationKind)
}

func (s *Store) DeleteOrganisation(ctx context.Context, number string) error {
	return remove(ctx, s, organisationKind, number)
}

func (s *Store) CreateClientSystem(ctx context.Context, cs store.ClientSystem) (store.ClientSystem, error) {
	return create(ctx, s, clientSystemKind, cs)
}

func (s *Store) UpdateClientSystem(ctx context.Context, cs store.ClientSystem) (store.ClientSystem, error) {
	return update(ctx, s, clientSystemKind, cs)
}

func (s *Store) ClientSystem(ctx context.Context, id string) (store.ClientSystem, error) {
	return get(ctx, s, clientSystemKind, id)
}

func (s *Store) ClientSystems(ctx context.Context) ([]store.ClientSystem, error) {
	return list(ctx, s, clientSystemKind)
}

func (s *Store) DeleteClientSystem(ctx context.Context, id string) error {
	return remove(ctx, s, clientSystemKind, id)
}

func (s *Store) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	return create(ctx, s, clientKind, c)
}

func (s *Store) UpdateClient(ctx context.Context, c store.Client) (store.Client, error) {
	return update(ctx, s, clientKind, c)
}

func (s *Store) Client(ctx context.Context, id string) (store.Client, error) {
	return get(ctx, s, clientKind, id)
}

func (s *Store) Clients(ctx context.Context) ([]store.Client, error) { return list(ctx, s, clientKind) }

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return remove(ctx, s, clientKind, id)
}

func (s *Store) CreateDelegation(ctx context.Context, d store.Delegation) (store.Delegation, error) {
	return create(ctx, s, delegationKind, d)
}

func (s *Store) UpdateDelegation(ctx context.Context, d store.Delegation) (store.Delegation, error) {
	return update(ctx, s, delegationKind, d)
}

func (s *Store) Delegation(ctx context.Context, organisation, supplier string) (store.Delegation, error) {
	return get(ctx, s, delegationKind, delegationKey(organisation, supplier))
}

func (s *Store) Delegations(ctx context.Context) ([]store.Delegation, error) {
	return list(ctx, s, delegationKind)
}

func (s *Store) DeleteDelegation(ctx context.Context, organisation, supplier string) error {
	return remove(ctx, s, delegationKind, delegationKey(organisation, supplier))
}
