package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// AcquireInstanceLease takes or renews an instance's lease in one write
// transaction: the upsert's WHERE lets it change only a free, expired or
// own lease, and the read of the lease in the way sees the same state.
func (s *Store) AcquireInstanceLease(ctx context.Context, instance, holder string, now time.Time, ttl time.Duration) (store.InstanceLease, error) {
	if instance == "" || holder == "" || ttl <= 0 {
		return store.InstanceLease{}, fmt.Errorf("sqlite: instance lease: empty instance or holder, or ttl %v", ttl)
	}
	var got store.InstanceLease
	err := s.write(ctx, func(tx *wtx) error {
		var h string
		var since, expires int64
		err := tx.queryRow(`INSERT INTO instance_lease (instance, holder, since, expires) VALUES (?, ?, ?, ?)
			ON CONFLICT (instance) DO UPDATE SET
				since = CASE WHEN instance_lease.holder = excluded.holder THEN instance_lease.since ELSE excluded.since END,
				holder = excluded.holder,
				expires = excluded.expires
			WHERE instance_lease.holder = excluded.holder OR instance_lease.expires <= ?
			RETURNING holder, since, expires`,
			instance, holder, micros(now), micros(now.Add(ttl)), micros(now)).Scan(&h, &since, &expires)
		held := errors.Is(err, sql.ErrNoRows)
		if held {
			err = tx.queryRow("SELECT holder, since, expires FROM instance_lease WHERE instance = ?", instance).
				Scan(&h, &since, &expires)
		}
		if err != nil {
			return fmt.Errorf("sqlite: instance lease %q: %w", instance, err)
		}
		got = store.InstanceLease{Instance: instance, Holder: h, Since: fromMicros(since), Expires: fromMicros(expires)}
		if held {
			return &store.LeaseHeldError{Lease: got}
		}
		return nil
	})
	if err != nil {
		return store.InstanceLease{}, err
	}
	return got, nil
}

// ReleaseInstanceLease deletes holder's lease of instance.
func (s *Store) ReleaseInstanceLease(ctx context.Context, instance, holder string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM instance_lease WHERE instance = ? AND holder = ?", instance, holder)
		if err != nil {
			return fmt.Errorf("sqlite: release instance lease %q: %w", instance, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: release instance lease %q: %w", instance, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: instance lease %q of %s: %w", instance, holder, store.ErrNotFound)
		}
		return nil
	})
}
