package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// Precision is the resolution at which a store keeps times. Backends may
// keep more; the suite compares after truncating to it.
const Precision = time.Microsecond

// goroutines is how many callers race in the concurrency tests, as in dex's
// RunConcurrencyTests.
const goroutines = 50

// promptly bounds how long a call with a canceled context may take.
const promptly = 5 * time.Second

// Run runs the conformance suite. open must return a fresh, empty store,
// sealing audit records with AuditKey, on every call and arrange for it to
// be closed when t ends (t.Cleanup); every subtest opens its own.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Registry", func(t *testing.T) { runRegistry(t, open) })
	t.Run("RegistryChanges", func(t *testing.T) { runChanges(t, open) })
	t.Run("JTI", func(t *testing.T) { runJTI(t, open) })
	t.Run("Keys", func(t *testing.T) { runKeys(t, open) })
	t.Run("Refresh", func(t *testing.T) { runRefresh(t, open) })
	t.Run("Audit", func(t *testing.T) { runAudit(t, open) })
	t.Run("Login", func(t *testing.T) { runLogin(t, open) })
	t.Run("InstanceLease", func(t *testing.T) { runLease(t, open) })
	t.Run("Ping", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) { runCanceled(t, open) })
}

// checkStoreTime fails unless got is in UTC and has no finer precision than
// Precision: what the store returns is what it will return again later.
func checkStoreTime(t *testing.T, what string, got time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", what, got.Location())
	}
	if !got.Equal(got.Truncate(Precision)) {
		t.Errorf("%s = %v has a finer precision than %v", what, got, Precision)
	}
}

// canonTime makes a time comparable with reflect.DeepEqual: truncated to
// Precision, in UTC, without a monotonic reading. Call it only after
// checkStoreTime.
func canonTime(tm time.Time) time.Time {
	return tm.Truncate(Precision).UTC().Round(0)
}

// inWindow fails unless got lies between two readings of the clock taken
// around the call, allowing for the truncation to Precision.
func inWindow(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Truncate(Precision)) || got.After(after) {
		t.Errorf("%s = %v, want between %v and %v", what, got, before, after)
	}
}

// emptyToNil returns a copy of v (a struct) in which every empty slice and
// map, at any depth of embedded or nested structs, is nil, so that a backend
// may return either.
func emptyToNil[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	normalize(rv)
	return v
}

func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 && !v.IsNil() {
			v.Set(reflect.Zero(v.Type()))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	}
}

// race starts n goroutines at once, each calling f with its index, and
// returns their errors in index order.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			errs[i] = f(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

// exactlyOneWins fails unless exactly one of errs is nil and every other
// one wraps loser.
func exactlyOneWins(t *testing.T, errs []error, loser error) (winner int) {
	t.Helper()
	winner = -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("callers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("caller %d: err = %v, want %v", i, err, loser)
		}
	}
	if winner < 0 {
		t.Errorf("no caller succeeded")
	}
	return winner
}

// runCanceled calls every method with a canceled context: each must fail
// promptly with an error wrapping context.Canceled and change nothing.
func runCanceled(t *testing.T, open func(t *testing.T) store.Store) {
	for _, c := range canceledCalls() {
		t.Run(c.name, func(t *testing.T) { testCanceled(t, open, c.call) })
	}
}

// What the canceled calls work on: testCanceled stores canceledAPI first,
// and checks that canceledJTI and canceledKey were not stored.
var (
	canceledNow = time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)
	canceledJTI = store.JTI{Key: "canceled-jti", Expires: canceledNow.Add(time.Minute)}
	canceledKey = store.Key{ID: "canceled-key", Purpose: store.PurposeSigning, Generation: 1,
		Algorithm: "RS256", Sealed: []byte("sealed"), CreatedAt: canceledNow, ActiveFrom: canceledNow}
	canceledAPI = store.API{Audience: "existing", Name: "Existing", Status: store.StatusActive}
)

type canceledCall struct {
	name string
	call func(ctx context.Context, s store.Store) error
}

// canceledCalls calls every method of the store.
func canceledCalls() []canceledCall {
	return []canceledCall{
		{"CreateRecord", func(ctx context.Context, s store.Store) error {
			_, err := store.Create(ctx, s, store.APIKind, store.API{Audience: "new"})
			return err
		}},
		{"UpdateRecord", func(ctx context.Context, s store.Store) error {
			a, err := store.Get(context.Background(), s, store.APIKind, canceledAPI.Audience)
			if err != nil {
				return err
			}
			a.Name = "Changed"
			_, err = store.Update(ctx, s, store.APIKind, a)
			return err
		}},
		{"Record", func(ctx context.Context, s store.Store) error {
			_, err := store.Get(ctx, s, store.APIKind, canceledAPI.Audience)
			return err
		}},
		{"Records", func(ctx context.Context, s store.Store) error {
			_, err := store.List(ctx, s, store.APIKind)
			return err
		}},
		{"DeleteRecord", func(ctx context.Context, s store.Store) error {
			return store.Delete(ctx, s, store.APIKind, canceledAPI.Audience)
		}},
		{"WriteRecords", func(ctx context.Context, s store.Store) error {
			_, err := s.WriteRecords(ctx, []store.RecordWrite{{Op: store.OpCreate, Record: org("999999998")}})
			return err
		}},
		{"RecordChanges", func(ctx context.Context, s store.Store) error {
			_, _, err := s.RecordChanges(ctx, -1)
			return err
		}},
		{"CreateRecord organisation", func(ctx context.Context, s store.Store) error {
			_, err := store.Create(ctx, s, store.OrganizationKind, store.Organization{Number: "999999999"})
			return err
		}},
		{"Records organisation", func(ctx context.Context, s store.Store) error {
			_, err := store.List(ctx, s, store.OrganizationKind)
			return err
		}},
		{"CreateRecord client system", func(ctx context.Context, s store.Store) error {
			_, err := store.Create(ctx, s, store.ClientSystemKind, store.ClientSystem{ID: "sys"})
			return err
		}},
		{"Records client system", func(ctx context.Context, s store.Store) error {
			_, err := store.List(ctx, s, store.ClientSystemKind)
			return err
		}},
		{"CreateRecord client", func(ctx context.Context, s store.Store) error {
			_, err := store.Create(ctx, s, store.ClientKind, store.Client{ID: "client"})
			return err
		}},
		{"Record client", func(ctx context.Context, s store.Store) error {
			_, err := store.Get(ctx, s, store.ClientKind, "client")
			return err
		}},
		{"RegistryVersion", func(ctx context.Context, s store.Store) error {
			_, err := s.RegistryVersion(ctx)
			return err
		}},
		{"ConsumeJTIs", func(ctx context.Context, s store.Store) error {
			return s.ConsumeJTIs(ctx, canceledNow, []store.JTI{canceledJTI})
		}},
		{"DeleteExpiredJTIs", func(ctx context.Context, s store.Store) error {
			_, err := s.DeleteExpiredJTIs(ctx, canceledNow)
			return err
		}},
		{"CreateKey", func(ctx context.Context, s store.Store) error {
			return s.CreateKey(ctx, canceledKey)
		}},
		{"Keys", func(ctx context.Context, s store.Store) error {
			_, err := s.Keys(ctx, store.PurposeSigning)
			return err
		}},
		{"DeleteKey", func(ctx context.Context, s store.Store) error {
			return s.DeleteKey(ctx, "missing")
		}},
		{"CommitDecision", func(ctx context.Context, s store.Store) error {
			_, err := s.CommitDecision(ctx, canceledNow, store.Decision{JTIs: []store.JTI{canceledJTI}, Audit: decision("sts", "c1", 1)})
			return err
		}},
		{"AuditRecords", func(ctx context.Context, s store.Store) error {
			_, err := s.AuditRecords(ctx, store.AuditFilter{})
			return err
		}},
		{"AuditChain", func(ctx context.Context, s store.Store) error {
			for _, err := range s.AuditChain(ctx, "sts") {
				return err
			}
			return errors.New("AuditChain yielded nothing, not even the error")
		}},
		{"AuditHeads", func(ctx context.Context, s store.Store) error {
			_, err := s.AuditHeads(ctx)
			return err
		}},
		{"CreatePushedRequest", func(ctx context.Context, s store.Store) error {
			return s.CreatePushedRequest(ctx, pushedRequest("canceled"))
		}},
		{"ConsumePushedRequest", func(ctx context.Context, s store.Store) error {
			_, err := s.ConsumePushedRequest(ctx, canceledNow, store.SecretID("canceled"), "client-1")
			return err
		}},
		{"CreateAuthorizationCode", func(ctx context.Context, s store.Store) error {
			return s.CreateAuthorizationCode(ctx, authorizationCode("canceled"))
		}},
		{"AuthorizationCode", func(ctx context.Context, s store.Store) error {
			_, err := s.AuthorizationCode(ctx, canceledNow, store.SecretID("canceled"))
			return err
		}},
		{"RedeemAuthorizationCode", func(ctx context.Context, s store.Store) error {
			_, err := s.RedeemAuthorizationCode(ctx, canceledNow, store.SecretID("canceled"), store.CodeRedemption{})
			return err
		}},
		{"CreateSession", func(ctx context.Context, s store.Store) error {
			return s.CreateSession(ctx, session("canceled"))
		}},
		{"Session", func(ctx context.Context, s store.Store) error {
			_, err := s.Session(ctx, canceledNow, store.SecretID("canceled"))
			return err
		}},
		{"AddSessionClient", func(ctx context.Context, s store.Store) error {
			return s.AddSessionClient(ctx, canceledNow, store.SecretID("canceled"), "client-2")
		}},
		{"DeleteSession", func(ctx context.Context, s store.Store) error {
			_, err := s.DeleteSession(ctx, store.SecretID("canceled"))
			return err
		}},
		{"CreateUpstreamLogin", func(ctx context.Context, s store.Store) error {
			return s.CreateUpstreamLogin(ctx, upstreamLogin("canceled"))
		}},
		{"ConsumeUpstreamLogin", func(ctx context.Context, s store.Store) error {
			_, err := s.ConsumeUpstreamLogin(ctx, canceledNow, store.SecretID("canceled"))
			return err
		}},
		{"DeleteExpiredLoginState", func(ctx context.Context, s store.Store) error {
			_, err := s.DeleteExpiredLoginState(ctx, canceledNow)
			return err
		}},
		{"AcquireInstanceLease", func(ctx context.Context, s store.Store) error {
			_, err := s.AcquireInstanceLease(ctx, "sts", "canceled", canceledNow, time.Minute)
			return err
		}},
		{"ReleaseInstanceLease", func(ctx context.Context, s store.Store) error {
			return s.ReleaseInstanceLease(ctx, "sts", "canceled")
		}},
		{"Ping", func(ctx context.Context, s store.Store) error {
			return s.Ping(ctx)
		}},
	}
}

func testCanceled(t *testing.T, open func(t *testing.T) store.Store, call func(ctx context.Context, s store.Store) error) {
	s := open(t)
	bg := context.Background()
	if _, err := store.Create(bg, s, store.APIKind, canceledAPI); err != nil {
		t.Fatalf("create api: %v", err)
	}
	version, err := s.RegistryVersion(bg)
	if err != nil {
		t.Fatalf("RegistryVersion: %v", err)
	}

	ctx, cancel := context.WithCancel(bg)
	cancel()
	result := make(chan error, 1)
	go func() { result <- call(ctx, s) }()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want %v", err, context.Canceled)
		}
	case <-time.After(promptly):
		t.Fatalf("no answer within %v", promptly)
	}

	// Nothing was written: the registry, the jti and the key are
	// as they were.
	if got, err := s.RegistryVersion(bg); err != nil || got != version {
		t.Errorf("RegistryVersion = %d, %v; want %d (unchanged)", got, err, version)
	}
	if got, err := store.Get(bg, s, store.APIKind, canceledAPI.Audience); err != nil || got.Name != canceledAPI.Name || got.Version != 1 {
		t.Errorf("api %q = %+v, %v; want it unchanged", canceledAPI.Audience, got, err)
	}
	if err := s.ConsumeJTIs(bg, canceledNow, []store.JTI{canceledJTI}); err != nil {
		t.Errorf("ConsumeJTIs after the canceled call: %v, want nil (nothing recorded)", err)
	}
	if keys, err := s.Keys(bg, store.PurposeSigning); err != nil || len(keys) != 0 {
		t.Errorf("Keys = %v, %v; want none", keys, err)
	}
	if heads, err := s.AuditHeads(bg); err != nil || len(heads) != 0 {
		t.Errorf("AuditHeads = %v, %v; want none", heads, err)
	}
	// No lease was taken: another holder gets one at once.
	if _, err := s.AcquireInstanceLease(bg, "sts", "after", canceledNow, time.Minute); err != nil {
		t.Errorf("AcquireInstanceLease after the canceled call: %v, want nil (no lease taken)", err)
	}
}
