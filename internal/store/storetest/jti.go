package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// base is the clock of the jti tests: the store must use the now it is
// given, never its own clock.
var base = time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)

func jti(key string, ttl time.Duration) store.JTI {
	return store.JTI{Key: key, Expires: base.Add(ttl)}
}

// checkReplay fails unless err is a refusal naming key: it must match
// store.ErrReplay and wrap a *store.ReplayError with that Key.
func checkReplay(t *testing.T, what string, err error, key string) {
	t.Helper()
	var re *store.ReplayError
	switch {
	case !errors.Is(err, store.ErrReplay):
		t.Errorf("%s: err = %v, want %v", what, err, store.ErrReplay)
	case !errors.As(err, &re):
		t.Errorf("%s: err = %v, want a *store.ReplayError", what, err)
	case re.Key != key:
		t.Errorf("%s: ReplayError names %q, want %q", what, re.Key, key)
	}
}

func runJTI(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("FirstUseThenReplay", func(t *testing.T) { testJTIFirstUseThenReplay(t, open) })
	t.Run("AllOrNothing", func(t *testing.T) { testJTIAllOrNothing(t, open) })
	t.Run("SameKeyTwiceExpiringNow", func(t *testing.T) { testJTISameKeyTwiceExpiringNow(t, open) })
	t.Run("Expiry", func(t *testing.T) { testJTIExpiry(t, open) })
	t.Run("ExpiredKeyInBatch", func(t *testing.T) { testJTIExpiredKeyInBatch(t, open) })
	t.Run("ConcurrentSameKey", func(t *testing.T) { testJTIConcurrentSameKey(t, open) })
	t.Run("ConcurrentDistinctKeys", func(t *testing.T) { testJTIConcurrentDistinctKeys(t, open) })
	t.Run("DeleteExpired", func(t *testing.T) { testJTIDeleteExpired(t, open) })
	t.Run("DeleteExpiredMany", func(t *testing.T) { testJTIDeleteExpiredMany(t, open) })
}

func testJTIFirstUseThenReplay(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	j := jti("client-assertion:c1:jti-1", time.Minute)
	if err := s.ConsumeJTIs(t.Context(), base, []store.JTI{j}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	checkReplay(t, "second use", s.ConsumeJTIs(t.Context(), base, []store.JTI{j}), j.Key)
	// A later replay with another expiry is still a replay.
	j.Expires = j.Expires.Add(time.Hour)
	checkReplay(t, "third use", s.ConsumeJTIs(t.Context(), base.Add(30*time.Second), []store.JTI{j}), j.Key)
}

func testJTIAllOrNothing(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name  string
		batch []string // "used" and "used2" were consumed before
		// wantReplay is the key the refusal names: the first spent
		// one in the order given.
		wantReplay string
	}{
		{"fresh then used", []string{"fresh", "used"}, "used"},
		{"used then fresh", []string{"used", "fresh"}, "used"},
		{"fresh, used, fresh2", []string{"fresh", "used", "fresh2"}, "used"},
		{"two used keys", []string{"fresh", "used2", "used"}, "used2"},
		{"same key twice", []string{"fresh", "fresh"}, "fresh"},
		{"fresh key twice after another", []string{"fresh2", "fresh", "fresh"}, "fresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if err := s.ConsumeJTIs(t.Context(), base, []store.JTI{jti("used", time.Minute), jti("used2", time.Minute)}); err != nil {
				t.Fatalf("consuming used and used2: %v", err)
			}
			var batch []store.JTI
			for _, k := range tt.batch {
				batch = append(batch, jti(k, time.Minute))
			}
			checkReplay(t, fmt.Sprintf("ConsumeJTIs(%q)", tt.batch), s.ConsumeJTIs(t.Context(), base, batch), tt.wantReplay)
			// Nothing of the refused call was recorded.
			for _, k := range []string{"fresh", "fresh2"} {
				if err := s.ConsumeJTIs(t.Context(), base, []store.JTI{jti(k, time.Minute)}); err != nil {
					t.Errorf("consuming %q after the refused call: %v, want nil", k, err)
				}
			}
		})
	}
}

func testJTISameKeyTwiceExpiringNow(t *testing.T, open func(t *testing.T) store.Store) {
	// A key whose Expires is not after now would be free again at
	// once; twice in one call it is still a replay.
	s := open(t)
	batch := []store.JTI{{Key: "k", Expires: base}, {Key: "k", Expires: base}}
	checkReplay(t, "ConsumeJTIs", s.ConsumeJTIs(t.Context(), base, batch), "k")
}

func testJTIExpiry(t *testing.T, open func(t *testing.T) store.Store) {
	// The key was consumed at base with Expires base+1m. A key whose
	// Expires is not after now is free again.
	tests := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{"before expiry", base.Add(59 * time.Second), store.ErrReplay},
		{"just before expiry", base.Add(time.Minute - Precision), store.ErrReplay},
		{"at expiry", base.Add(time.Minute), nil},
		{"after expiry", base.Add(time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if err := s.ConsumeJTIs(t.Context(), base, []store.JTI{jti("k", time.Minute)}); err != nil {
				t.Fatalf("first use: %v", err)
			}
			// The second use comes with its own, later expiry.
			again := store.JTI{Key: "k", Expires: tt.now.Add(time.Minute)}
			err := s.ConsumeJTIs(t.Context(), tt.now, []store.JTI{again})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("second use at %v: err = %v, want %v", tt.now, err, tt.wantErr)
			}
			if err != nil {
				checkReplay(t, "second use", err, "k")
				return
			}
			// A reused key is recorded with its new expiry.
			later := tt.now.Add(30 * time.Second)
			checkReplay(t, fmt.Sprintf("third use at %v", later), s.ConsumeJTIs(t.Context(), later, []store.JTI{again}), "k")
		})
	}
}

func testJTIExpiredKeyInBatch(t *testing.T, open func(t *testing.T) store.Store) {
	// An expired record does not make a batch fail, and a refused
	// batch does not overwrite it.
	s := open(t)
	if err := s.ConsumeJTIs(t.Context(), base, []store.JTI{jti("old", time.Minute), jti("used", time.Hour)}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	now := base.Add(2 * time.Minute)
	refused := []store.JTI{{Key: "old", Expires: now.Add(time.Hour)}, {Key: "used", Expires: now.Add(time.Hour)}}
	checkReplay(t, "batch with a used key", s.ConsumeJTIs(t.Context(), now, refused), "used")
	// "old" still has its expired record, so it is free at any time
	// after base+1m.
	if err := s.ConsumeJTIs(t.Context(), base.Add(time.Minute), []store.JTI{{Key: "old", Expires: now}}); err != nil {
		t.Fatalf("consuming the expired key: %v", err)
	}
}

func testJTIConcurrentSameKey(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	errs := race(goroutines, func(i int) error {
		// Each caller has its own second key: the losers' keys must
		// not be recorded.
		return s.ConsumeJTIs(t.Context(), base, []store.JTI{
			jti("shared", time.Minute),
			jti(fmt.Sprintf("own-%d", i), time.Minute),
		})
	})
	winner := exactlyOneWins(t, errs, store.ErrReplay)
	for i, err := range errs {
		if i != winner {
			checkReplay(t, fmt.Sprintf("caller %d", i), err, "shared")
		}
	}
	for i := range goroutines {
		err := s.ConsumeJTIs(t.Context(), base, []store.JTI{jti(fmt.Sprintf("own-%d", i), time.Minute)})
		switch {
		case i == winner:
			checkReplay(t, "winner's own key", err, fmt.Sprintf("own-%d", i))
		case i != winner && err != nil:
			t.Errorf("loser %d's own key: err = %v, want nil", i, err)
		}
	}
}

func testJTIConcurrentDistinctKeys(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	batch := func(i int) []store.JTI {
		return []store.JTI{
			jti(fmt.Sprintf("assertion-%d", i), time.Minute),
			jti(fmt.Sprintf("proof-%d", i), time.Minute),
		}
	}
	errs := race(goroutines, func(i int) error {
		return s.ConsumeJTIs(t.Context(), base, batch(i))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	for i := range goroutines {
		for _, j := range batch(i) {
			checkReplay(t, "replay", s.ConsumeJTIs(t.Context(), base, []store.JTI{j}), j.Key)
		}
	}
}

func testJTIDeleteExpired(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	expiries := map[string]time.Duration{
		"expired-2m": -2 * time.Minute,
		"expired-1m": -time.Minute,
		"expires-at": 0,
		"live-1us":   Precision,
		"live-1m":    time.Minute,
		"live-2m":    2 * time.Minute,
	}
	for k, ttl := range expiries {
		// Recorded long before, so that every key is valid when
		// consumed.
		if err := s.ConsumeJTIs(t.Context(), base.Add(-time.Hour), []store.JTI{jti(k, ttl)}); err != nil {
			t.Fatalf("consuming %q: %v", k, err)
		}
	}
	n, err := s.DeleteExpiredJTIs(t.Context(), base)
	if err != nil {
		t.Fatalf("DeleteExpiredJTIs: %v", err)
	}
	if n != 3 {
		t.Errorf("DeleteExpiredJTIs removed %d, want 3", n)
	}
	if n, err := s.DeleteExpiredJTIs(t.Context(), base); err != nil || n != 0 {
		t.Errorf("second DeleteExpiredJTIs = %d, %v; want 0, nil", n, err)
	}
	// At a now long before any expiry, a removed key is free and a
	// kept one is a replay.
	early := base.Add(-time.Hour)
	for k, ttl := range expiries {
		err := s.ConsumeJTIs(t.Context(), early, []store.JTI{jti(k, ttl)})
		switch {
		case ttl > 0:
			checkReplay(t, fmt.Sprintf("consuming kept %q after cleanup", k), err, k)
		case err != nil:
			t.Errorf("consuming removed %q after cleanup: %v, want nil", k, err)
		}
	}
}

func testJTIDeleteExpiredMany(t *testing.T, open func(t *testing.T) store.Store) {
	// More keys than a backend might delete in one statement.
	s := open(t)
	const n = 2500
	for i := 0; i < n; i += 100 {
		var batch []store.JTI
		for j := i; j < i+100; j++ {
			ttl := -time.Second
			if j%5 == 0 {
				ttl = time.Second
			}
			batch = append(batch, jti(fmt.Sprintf("k-%d", j), ttl))
		}
		if err := s.ConsumeJTIs(t.Context(), base.Add(-time.Hour), batch); err != nil {
			t.Fatalf("ConsumeJTIs: %v", err)
		}
	}
	got, err := s.DeleteExpiredJTIs(t.Context(), base)
	if err != nil {
		t.Fatalf("DeleteExpiredJTIs: %v", err)
	}
	if want := int64(n - n/5); got != want {
		t.Errorf("DeleteExpiredJTIs removed %d, want %d", got, want)
	}
	if got, err := s.DeleteExpiredJTIs(t.Context(), base.Add(time.Second)); err != nil || got != n/5 {
		t.Errorf("second DeleteExpiredJTIs = %d, %v; want %d, nil", got, err, n/5)
	}
}
