package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// leaseNow carries nanoseconds and a zone other than UTC, so that the
// round trip of Since and Expires is tested.
var leaseNow = time.Date(2031, 5, 17, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))

const leaseTTL = 30 * time.Second

// checkLease fails unless got is the lease of instance held by holder
// since since until expires, with times in UTC at Precision.
func checkLease(t *testing.T, what string, got store.InstanceLease, instance, holder string, since, expires time.Time) {
	t.Helper()
	checkStoreTime(t, what+" Since", got.Since)
	checkStoreTime(t, what+" Expires", got.Expires)
	want := store.InstanceLease{Instance: instance, Holder: holder, Since: canonTime(since), Expires: canonTime(expires)}
	got.Since, got.Expires = canonTime(got.Since), canonTime(got.Expires)
	if got != want {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// checkHeld fails unless err is a *LeaseHeldError naming holder's lease
// of instance.
func checkHeld(t *testing.T, what string, err error, instance, holder string, since, expires time.Time) {
	t.Helper()
	var held *store.LeaseHeldError
	if !errors.Is(err, store.ErrLeaseHeld) || !errors.As(err, &held) {
		t.Fatalf("%s: err = %v, want a *LeaseHeldError", what, err)
	}
	checkLease(t, what+": the lease in the way", held.Lease, instance, holder, since, expires)
}

func runLease(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("AcquireFree", func(t *testing.T) {
		s := open(t)
		got, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", leaseNow, leaseTTL)
		if err != nil {
			t.Fatalf("AcquireInstanceLease: %v", err)
		}
		checkLease(t, "lease", got, "sts-a", "holder-1", leaseNow, leaseNow.Add(leaseTTL))
	})

	t.Run("HeldByAnother", func(t *testing.T) {
		s := open(t)
		if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", leaseNow, leaseTTL); err != nil {
			t.Fatalf("AcquireInstanceLease: %v", err)
		}
		_, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-2", leaseNow.Add(leaseTTL/2), leaseTTL)
		checkHeld(t, "second holder", err, "sts-a", "holder-1", leaseNow, leaseNow.Add(leaseTTL))
	})

	t.Run("InstancesAreIndependent", func(t *testing.T) {
		s := open(t)
		if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", leaseNow, leaseTTL); err != nil {
			t.Fatalf("AcquireInstanceLease sts-a: %v", err)
		}
		if _, err := s.AcquireInstanceLease(t.Context(), "sts-b", "holder-2", leaseNow, leaseTTL); err != nil {
			t.Errorf("AcquireInstanceLease sts-b: %v, want nil", err)
		}
	})

	t.Run("RenewKeepsSince", func(t *testing.T) {
		s := open(t)
		if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", leaseNow, leaseTTL); err != nil {
			t.Fatalf("AcquireInstanceLease: %v", err)
		}
		later := leaseNow.Add(leaseTTL / 3)
		got, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", later, leaseTTL)
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		checkLease(t, "renewed lease", got, "sts-a", "holder-1", leaseNow, later.Add(leaseTTL))
		// The renewal counts: another holder waits for the new expiry.
		_, err = s.AcquireInstanceLease(t.Context(), "sts-a", "holder-2", leaseNow.Add(leaseTTL), leaseTTL)
		checkHeld(t, "at the first expiry", err, "sts-a", "holder-1", leaseNow, later.Add(leaseTTL))
	})

	t.Run("TakenOverOnlyOnceExpired", func(t *testing.T) {
		s := open(t)
		if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", leaseNow, leaseTTL); err != nil {
			t.Fatalf("AcquireInstanceLease: %v", err)
		}
		expires := leaseNow.Add(leaseTTL)
		_, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-2", expires.Add(-Precision), leaseTTL)
		checkHeld(t, "just before the expiry", err, "sts-a", "holder-1", leaseNow, expires)
		got, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-2", expires, leaseTTL)
		if err != nil {
			t.Fatalf("at the expiry: %v, want the lease", err)
		}
		checkLease(t, "taken-over lease", got, "sts-a", "holder-2", expires, expires.Add(leaseTTL))
		// The old holder has lost it: it can neither renew nor release.
		_, err = s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", expires.Add(time.Second), leaseTTL)
		checkHeld(t, "the old holder's renewal", err, "sts-a", "holder-2", expires, expires.Add(leaseTTL))
		if err := s.ReleaseInstanceLease(t.Context(), "sts-a", "holder-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the old holder's release: err = %v, want %v", err, store.ErrNotFound)
		}
		_, err = s.AcquireInstanceLease(t.Context(), "sts-a", "holder-3", expires.Add(time.Second), leaseTTL)
		checkHeld(t, "after the old holder's release", err, "sts-a", "holder-2", expires, expires.Add(leaseTTL))
	})

	t.Run("Release", func(t *testing.T) {
		s := open(t)
		if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-1", leaseNow, leaseTTL); err != nil {
			t.Fatalf("AcquireInstanceLease: %v", err)
		}
		if err := s.ReleaseInstanceLease(t.Context(), "sts-a", "holder-1"); err != nil {
			t.Fatalf("ReleaseInstanceLease: %v", err)
		}
		// Free at once, long before the released lease would expire.
		got, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-2", leaseNow.Add(time.Second), leaseTTL)
		if err != nil {
			t.Fatalf("after the release: %v, want the lease", err)
		}
		checkLease(t, "lease after the release", got, "sts-a", "holder-2", leaseNow.Add(time.Second), leaseNow.Add(time.Second+leaseTTL))
		if err := s.ReleaseInstanceLease(t.Context(), "sts-a", "holder-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a second release: err = %v, want %v", err, store.ErrNotFound)
		}
		if err := s.ReleaseInstanceLease(t.Context(), "sts-none", "holder-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("release of an unknown instance: err = %v, want %v", err, store.ErrNotFound)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, c := range []struct {
			name, instance, holder string
			ttl                    time.Duration
		}{
			{"empty instance", "", "holder-1", leaseTTL},
			{"empty holder", "sts-a", "", leaseTTL},
			{"zero ttl", "sts-a", "holder-1", 0},
			{"negative ttl", "sts-a", "holder-1", -time.Second},
		} {
			t.Run(c.name, func(t *testing.T) {
				s := open(t)
				_, err := s.AcquireInstanceLease(t.Context(), c.instance, c.holder, leaseNow, c.ttl)
				if err == nil || errors.Is(err, store.ErrLeaseHeld) {
					t.Fatalf("err = %v, want an input error", err)
				}
				if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "holder-2", leaseNow, leaseTTL); err != nil {
					t.Errorf("a valid acquire after it: %v, want nil (nothing taken)", err)
				}
			})
		}
	})

	// Many servers started at once with one instance name: exactly one
	// gets the lease, and every other is told which one.
	for _, expired := range []bool{false, true} {
		t.Run(map[bool]string{false: "Race", true: "RaceForExpired"}[expired], func(t *testing.T) {
			s := open(t)
			now := leaseNow
			if expired {
				if _, err := s.AcquireInstanceLease(t.Context(), "sts-a", "crashed", leaseNow, leaseTTL); err != nil {
					t.Fatalf("AcquireInstanceLease: %v", err)
				}
				now = leaseNow.Add(leaseTTL)
			}
			errs := race(goroutines, func(i int) error {
				_, err := s.AcquireInstanceLease(t.Context(), "sts-a", fmt.Sprintf("holder-%d", i), now, leaseTTL)
				return err
			})
			winner := exactlyOneWins(t, errs, store.ErrLeaseHeld)
			if winner < 0 {
				return
			}
			for i, err := range errs {
				if i != winner {
					checkHeld(t, fmt.Sprintf("caller %d", i), err, "sts-a", fmt.Sprintf("holder-%d", winner), now, now.Add(leaseTTL))
				}
			}
		})
	}
}
