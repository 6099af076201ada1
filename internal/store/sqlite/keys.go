package sqlite

import (
	"context"
	"fmt"

	"github.com/tillit-sts/tillit/internal/store"
)

// CreateKey stores a key. It fails with store.ErrAlreadyExists when the ID
// or the (Purpose, Generation) pair is taken.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	if k.ID == "" {
		return fmt.Errorf("sqlite: create key: empty ID")
	}
	return s.write(ctx, func(tx *wtx) error {
		// ON CONFLICT DO NOTHING covers both unique constraints.
		res, err := tx.exec(`INSERT INTO service_key
			(id, purpose, generation, algorithm, public, sealed, created_at, active_from)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			k.ID, string(k.Purpose), k.Generation, k.Algorithm, nonNil(k.Public), nonNil(k.Sealed),
			micros(k.CreatedAt), micros(k.ActiveFrom))
		if err != nil {
			return fmt.Errorf("sqlite: create key %q: %w", k.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: create key %q: %w", k.ID, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: key %q or %s generation %d: %w", k.ID, k.Purpose, k.Generation, store.ErrAlreadyExists)
		}
		return nil
	})
}

// nonNil makes a nil slice an empty BLOB rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Keys lists the keys of one purpose ordered by Generation, with times in
// UTC at microsecond precision.
func (s *Store) Keys(ctx context.Context, purpose store.KeyPurpose) ([]store.Key, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT id, purpose, generation, algorithm, public, sealed, created_at, active_from
		FROM service_key WHERE purpose = ? ORDER BY generation`, string(purpose))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s keys: %w", purpose, err)
	}
	defer rows.Close()
	var keys []store.Key
	for rows.Next() {
		var (
			k                     store.Key
			createdAt, activeFrom int64
		)
		if err := rows.Scan(&k.ID, &k.Purpose, &k.Generation, &k.Algorithm, &k.Public, &k.Sealed, &createdAt, &activeFrom); err != nil {
			return nil, fmt.Errorf("sqlite: list %s keys: %w", purpose, err)
		}
		k.CreatedAt, k.ActiveFrom = fromMicros(createdAt), fromMicros(activeFrom)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %s keys: %w", purpose, err)
	}
	return keys, nil
}

// DeleteKey removes a key; store.ErrNotFound if there is none with that ID.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM service_key WHERE id = ?", id)
		if err != nil {
			return fmt.Errorf("sqlite: delete key %q: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete key %q: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: key %q: %w", id, store.ErrNotFound)
		}
		return nil
	})
}
