package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// DefaultLeaseTTL is how long a server's claim on its instance name lasts
// unless it renews it, which it does every third of that. A server that
// stops cleanly gives the name up at once; one that crashed holds it this
// long.
const DefaultLeaseTTL = 30 * time.Second

// leaseHolder names this server in the instance lease: its process and
// host, for the operator who reads the refusal, and a random part, so that
// two servers in one process (tests, embedding) differ too.
func leaseHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("pid %d on %s (%s)", os.Getpid(), host, hex.EncodeToString(b))
}

// leaseError is the refusal to serve an instance that another server
// serves: two servers with one instance name would append to one audit
// chain, each from its own idea of the chain's head, and break it.
func leaseError(l store.InstanceLease) error {
	return fmt.Errorf("server: instance %q is already served by %s since %s; give each server its own `instance` in the configuration "+
		"(a server that stopped without shutting down cleanly holds it until %s): %w",
		l.Instance, l.Holder, l.Since.Format(time.RFC3339), l.Expires.Format(time.RFC3339), store.ErrLeaseHeld)
}

// acquireLease takes the lease of the server's instance name. When another
// server holds it, it refuses at once, or with wait, watches the lease
// first: a holder that renews it is alive, and New refuses; a lease that
// expires unrenewed was left by a server that crashed, and this one takes
// it over. A service manager that restarts a crashed server so gets a
// server, not a refusal, within the lease's time.
func (s *Server) acquireLease(ctx context.Context, wait bool) error {
	instance := s.cfg.Instance
	_, err := s.store.AcquireInstanceLease(ctx, instance, s.holder, s.now(), s.leaseTTL)
	var held *store.LeaseHeldError
	switch {
	case err == nil:
		s.leased = true
		return nil
	case !errors.As(err, &held):
		return fmt.Errorf("server: instance lease: %w", err)
	case !wait:
		return leaseError(held.Lease)
	}
	first := held.Lease
	s.log.Warn("instance lease held by another server; waiting to see whether it renews it",
		"instance", instance, "holder", first.Holder, "since", first.Since, "expires", first.Expires)
	tick := time.NewTicker(s.leaseTTL / 10)
	defer tick.Stop()
	// Bounded in real time too, whatever the clock says.
	giveUp := time.After(2 * s.leaseTTL)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-giveUp:
			return leaseError(first)
		case <-tick.C:
		}
		_, err := s.store.AcquireInstanceLease(ctx, instance, s.holder, s.now(), s.leaseTTL)
		switch {
		case err == nil:
			s.leased = true
			s.log.Warn("instance lease taken over: its holder let it expire without releasing it (a crash?)",
				"instance", instance, "holder", first.Holder, "since", first.Since)
			return nil
		case !errors.As(err, &held):
			return fmt.Errorf("server: instance lease: %w", err)
		case held.Lease != first:
			// Renewed, or taken by yet another server: alive.
			return leaseError(held.Lease)
		}
	}
}

// renewLease renews the instance lease; a background job calls it every
// third of the lease's time. A lease another server has taken meanwhile
// (this one could not renew it in time) makes this server not ready: it
// must not serve an instance another serves.
func (s *Server) renewLease(ctx context.Context) error {
	_, err := s.store.AcquireInstanceLease(ctx, s.cfg.Instance, s.holder, s.now(), s.leaseTTL)
	var held *store.LeaseHeldError
	if errors.As(err, &held) {
		s.leaseLost.Store(true)
		return fmt.Errorf("this server reports not ready: %w", leaseError(held.Lease))
	}
	if err != nil {
		return err
	}
	if s.leaseLost.Swap(false) {
		s.log.Info("instance lease regained", "instance", s.cfg.Instance)
	}
	return nil
}

// releaseLease gives the instance name up, so that another server may
// take it at once.
func (s *Server) releaseLease() {
	if !s.leased {
		return
	}
	s.leased = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReleaseInstanceLease(ctx, s.cfg.Instance, s.holder); err != nil {
		s.log.Warn("instance lease not released; another server can take it once it expires",
			"instance", s.cfg.Instance, "err", err)
	}
}
