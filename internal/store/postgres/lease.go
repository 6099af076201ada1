package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tillit-sts/tillit/internal/store"
)

// acquireLease takes or renews an instance's lease. Of concurrent upserts
// of one instance, ON CONFLICT makes each wait for the one before it and
// evaluates the WHERE on the row that one left, so exactly one of them
// takes a free lease.
const acquireLease = `INSERT INTO instance_lease AS l (instance, holder, since, expires) VALUES ($1, $2, $3, $4)
ON CONFLICT (instance) DO UPDATE SET
	since = CASE WHEN l.holder = excluded.holder THEN l.since ELSE excluded.since END,
	holder = excluded.holder,
	expires = excluded.expires
WHERE l.holder = excluded.holder OR l.expires <= $3
RETURNING holder, since, expires`

// AcquireInstanceLease takes or renews an instance's lease. When it is
// held, a second statement reads who holds it; if that lease was released
// in between, it tries again.
func (s *Store) AcquireInstanceLease(ctx context.Context, instance, holder string, now time.Time, ttl time.Duration) (store.InstanceLease, error) {
	if instance == "" || holder == "" || ttl <= 0 {
		return store.InstanceLease{}, fmt.Errorf("postgres: instance lease: empty instance or holder, or ttl %v", ttl)
	}
	for range 3 {
		l := store.InstanceLease{Instance: instance}
		err := s.pool.QueryRow(ctx, acquireLease, instance, holder, now, now.Add(ttl)).Scan(&l.Holder, &l.Since, &l.Expires)
		if err == nil {
			l.Since, l.Expires = utc(l.Since), utc(l.Expires)
			return l, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return store.InstanceLease{}, fmt.Errorf("postgres: instance lease %q: %w", instance, err)
		}
		err = s.pool.QueryRow(ctx, "SELECT holder, since, expires FROM instance_lease WHERE instance = $1", instance).
			Scan(&l.Holder, &l.Since, &l.Expires)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // released meanwhile
		case err != nil:
			return store.InstanceLease{}, fmt.Errorf("postgres: instance lease %q: %w", instance, err)
		}
		l.Since, l.Expires = utc(l.Since), utc(l.Expires)
		return store.InstanceLease{}, &store.LeaseHeldError{Lease: l}
	}
	return store.InstanceLease{}, fmt.Errorf("postgres: instance lease %q: taken and released again three times while being read", instance)
}

// ReleaseInstanceLease deletes holder's lease of instance.
func (s *Store) ReleaseInstanceLease(ctx context.Context, instance, holder string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM instance_lease WHERE instance = $1 AND holder = $2", instance, holder)
	if err != nil {
		return fmt.Errorf("postgres: release instance lease %q: %w", instance, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: instance lease %q of %s: %w", instance, holder, store.ErrNotFound)
	}
	return nil
}
