package store

import (
	"errors"
	"fmt"
	"time"
)

// ErrLeaseHeld reports an instance name whose lease another holder has
// and has not let expire. Match it with errors.Is; errors.As with a
// *LeaseHeldError gives the lease.
var ErrLeaseHeld = errors.New("store: instance lease held by another server")

// InstanceLease says which server serves an instance name. Two servers
// with one name would append to one audit chain from two processes, each
// with its own idea of the chain's head, and break it: a server takes the
// lease at start, renews it while it serves and releases it when it stops.
type InstanceLease struct {
	Instance string
	// Holder names the server: its host, process and a random part, so
	// that two servers in one process differ too.
	Holder string
	// Since is when Holder took the lease; renewals keep it.
	Since time.Time
	// Expires is when the lease is free for another holder unless Holder
	// renews it first.
	Expires time.Time
}

// LeaseHeldError is ErrLeaseHeld with the lease that is in the way.
type LeaseHeldError struct {
	Lease InstanceLease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("store: instance %q is held by %s since %s until %s", e.Lease.Instance, e.Lease.Holder,
		e.Lease.Since.Format(time.RFC3339), e.Lease.Expires.Format(time.RFC3339))
}

// Is makes a *LeaseHeldError match ErrLeaseHeld.
func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }
