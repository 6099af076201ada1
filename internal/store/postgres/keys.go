package postgres

import (
	"context"
	"fmt"

	"github.com/tillit-sts/tillit/internal/store"
)

// CreateKey stores a key. It fails with store.ErrAlreadyExists when the ID
// or the (Purpose, Generation) pair is taken; ON CONFLICT DO NOTHING
// without a target covers both unique constraints, and makes a racing
// insert wait for the other's outcome instead of failing.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	if k.ID == "" {
		return fmt.Errorf("postgres: create key: empty ID")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO service_key
		(id, purpose, generation, algorithm, public, sealed, created_at, active_from)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		k.ID, string(k.Purpose), k.Generation, k.Algorithm, nonNil(k.Public), nonNil(k.Sealed), k.CreatedAt, k.ActiveFrom)
	if err != nil {
		return fmt.Errorf("postgres: create key %q: %w", k.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: key %q or %s generation %d: %w", k.ID, k.Purpose, k.Generation, store.ErrAlreadyExists)
	}
	return nil
}

// Keys lists the keys of one purpose ordered by Generation.
func (s *Store) Keys(ctx context.Context, purpose store.KeyPurpose) ([]store.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, purpose, generation, algorithm, public, sealed, created_at, active_from
		FROM service_key WHERE purpose = $1 ORDER BY generation`, string(purpose))
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s keys: %w", purpose, err)
	}
	defer rows.Close()
	var keys []store.Key
	for rows.Next() {
		var k store.Key
		var p string
		if err := rows.Scan(&k.ID, &p, &k.Generation, &k.Algorithm, &k.Public, &k.Sealed, &k.CreatedAt, &k.ActiveFrom); err != nil {
			return nil, fmt.Errorf("postgres: list %s keys: %w", purpose, err)
		}
		k.Purpose, k.CreatedAt, k.ActiveFrom = store.KeyPurpose(p), utc(k.CreatedAt), utc(k.ActiveFrom)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %s keys: %w", purpose, err)
	}
	return keys, nil
}

// DeleteKey removes a key; store.ErrNotFound if there is none with that ID.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM service_key WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("postgres: delete key %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: key %q: %w", id, store.ErrNotFound)
	}
	return nil
}
