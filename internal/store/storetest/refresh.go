package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

func refreshToken(id, family string) store.RefreshToken {
	return store.RefreshToken{
		ID:        id,
		FamilyID:  family,
		ClientID:  "client-1",
		JKT:       "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		Grant:     []byte(`{"scope":["openid","nhn:deft/api"]}` + "\x00\xff"),
		IssuedAt:  base,
		ExpiresAt: base.Add(10 * time.Hour),
	}
}

// unbound is rt without a DPoP key.
func unbound(rt store.RefreshToken) store.RefreshToken {
	rt.JKT = ""
	return rt
}

func mustRefresh(t *testing.T, s store.Store, id string) store.RefreshToken {
	t.Helper()
	got, err := s.RefreshToken(t.Context(), id)
	if err != nil {
		t.Fatalf("RefreshToken(%q): %v", id, err)
	}
	return got
}

func runRefresh(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGet", func(t *testing.T) { testRefreshCreateGet(t, open) })
	t.Run("Rotate", func(t *testing.T) { testRefreshRotate(t, open) })
	t.Run("ReuseRevokesFamily", func(t *testing.T) { testRefreshReuseRevokesFamily(t, open) })
	t.Run("RotateRefusals", func(t *testing.T) { testRefreshRotateRefusals(t, open) })
	t.Run("ConcurrentRotation", func(t *testing.T) { testRefreshConcurrentRotation(t, open) })
	t.Run("RetryGrace", func(t *testing.T) { testRefreshRetryGrace(t, open) })
	t.Run("RevokeFamilyAndCleanup", func(t *testing.T) { testRefreshRevokeFamilyAndCleanup(t, open) })
}

func testRefreshCreateGet(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	want := refreshToken("rt-1", "fam-1")
	if err := s.CreateRefreshToken(t.Context(), want); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	got := mustRefresh(t, s, "rt-1")
	checkStoreTime(t, "IssuedAt", got.IssuedAt)
	want.Status = store.RefreshActive
	got.IssuedAt, got.ExpiresAt = canonTime(got.IssuedAt), canonTime(got.ExpiresAt)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if err := s.CreateRefreshToken(t.Context(), want); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate: err = %v, want %v", err, store.ErrAlreadyExists)
	}
	if _, err := s.RefreshToken(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing: err = %v, want %v", err, store.ErrNotFound)
	}
}

func testRefreshRotate(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	if err := s.CreateRefreshToken(ctx, refreshToken("rt-1", "fam-1")); err != nil {
		t.Fatal(err)
	}
	now := base.Add(time.Minute)
	if err := s.RotateRefreshToken(ctx, now, "rt-1", refreshToken("rt-2", "fam-1")); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	old := mustRefresh(t, s, "rt-1")
	if old.Status != store.RefreshRotated || !canonTime(old.UsedAt).Equal(now) {
		t.Errorf("old token: status %s used %v, want rotated at %v", old.Status, old.UsedAt, now)
	}
	if next := mustRefresh(t, s, "rt-2"); next.Status != store.RefreshActive {
		t.Errorf("next token status %s", next.Status)
	}
	if err := s.RotateRefreshToken(ctx, now, "rt-2", refreshToken("rt-3", "fam-1")); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
}

func testRefreshReuseRevokesFamily(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	for _, rt := range []store.RefreshToken{refreshToken("rt-1", "fam-1"), refreshToken("other", "fam-2")} {
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RotateRefreshToken(ctx, base, "rt-1", refreshToken("rt-2", "fam-1")); err != nil {
		t.Fatal(err)
	}
	// After the retry grace (testRefreshRetryGrace), any reuse.
	err := s.RotateRefreshToken(ctx, base.Add(store.RefreshRetryGrace), "rt-1", refreshToken("rt-x", "fam-1"))
	if !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse: err = %v, want %v", err, store.ErrRefreshReused)
	}
	for _, id := range []string{"rt-1", "rt-2"} {
		if got := mustRefresh(t, s, id); got.Status != store.RefreshRevoked {
			t.Errorf("%s after reuse: status %s, want revoked", id, got.Status)
		}
	}
	if _, err := s.RefreshToken(ctx, "rt-x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the token offered on reuse was stored: %v", err)
	}
	if got := mustRefresh(t, s, "other"); got.Status != store.RefreshActive {
		t.Errorf("another family was touched: %s", got.Status)
	}
	if err := s.RotateRefreshToken(ctx, base, "rt-2", refreshToken("rt-3", "fam-1")); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("rotating a revoked token: err = %v, want %v", err, store.ErrRevoked)
	}
}

func testRefreshRotateRefusals(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	if err := s.CreateRefreshToken(ctx, refreshToken("rt-1", "fam-1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		now     time.Time
		old     string
		next    store.RefreshToken
		wantErr error
	}{
		{"unknown token", base, "nope", refreshToken("n1", "fam-1"), store.ErrNotFound},
		{"expired family", base.Add(10 * time.Hour), "rt-1", refreshToken("n2", "fam-1"), store.ErrRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.RotateRefreshToken(ctx, tt.now, tt.old, tt.next); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if err := s.RotateRefreshToken(ctx, base, "rt-1", refreshToken("n3", "another-family")); err == nil {
		t.Error("rotation into another family succeeded")
	}
	if got := mustRefresh(t, s, "rt-1"); got.Status != store.RefreshActive {
		t.Errorf("refused rotations changed the token: %s", got.Status)
	}
}

func testRefreshConcurrentRotation(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	// Unbound, so that no retry grace (testRefreshRetryGrace) applies.
	rt := refreshToken("rt-1", "fam-1")
	rt.JKT = ""
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.RotateRefreshToken(ctx, base, "rt-1", refreshToken(fmt.Sprintf("next-%d", i), "fam-1"))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrRefreshReused), errors.Is(err, store.ErrRevoked):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d rotations of one token succeeded, want exactly 1", wins)
	}
}

func testRefreshRevokeFamilyAndCleanup(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	short := refreshToken("short", "fam-short")
	short.ExpiresAt = base.Add(time.Hour)
	for _, rt := range []store.RefreshToken{refreshToken("a1", "fam-a"), short} {
		if err := s.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RotateRefreshToken(ctx, base, "a1", refreshToken("a2", "fam-a")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RevokeRefreshFamily(ctx, "fam-a"); err != nil || n != 2 {
		t.Errorf("RevokeRefreshFamily = %d, %v; want 2", n, err)
	}
	if n, err := s.RevokeRefreshFamily(ctx, "fam-a"); err != nil || n != 0 {
		t.Errorf("second RevokeRefreshFamily = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteExpiredRefreshTokens(ctx, base.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredRefreshTokens = %d, %v; want 1", n, err)
	}
	if _, err := s.RefreshToken(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired token still stored: %v", err)
	}
	if got := mustRefresh(t, s, "a2"); got.Status != store.RefreshRevoked {
		t.Errorf("a2 status %s", got.Status)
	}
}

// testRefreshRetryGrace: a DPoP-bound token rotated less than
// store.RefreshRetryGrace ago, whose successor was never used, may be
// rotated once more (a client retrying after an answer it never got);
// anything else that brings back a rotated token is reuse, and the
// successor the second rotation retires counts as rotated.
func testRefreshRetryGrace(t *testing.T, open func(t *testing.T) store.Store) {
	type step struct {
		after   time.Duration // since the first rotation
		old     string
		next    string
		wantErr error
	}
	tests := []struct {
		name  string
		jkt   string // of the family; "" is unbound
		steps []step
		// status of each token at the end
		want map[string]store.RefreshStatus
	}{
		{name: "retry within the grace", jkt: "key", steps: []step{{time.Second, "rt-1", "rt-3", nil}},
			want: map[string]store.RefreshStatus{"rt-1": store.RefreshRotated, "rt-2": store.RefreshRotated, "rt-3": store.RefreshActive}},
		{name: "a third use is reuse", jkt: "key", steps: []step{{time.Second, "rt-1", "rt-3", nil}, {2 * time.Second, "rt-1", "rt-4", store.ErrRefreshReused}},
			want: map[string]store.RefreshStatus{"rt-1": store.RefreshRevoked, "rt-2": store.RefreshRevoked, "rt-3": store.RefreshRevoked}},
		{name: "the retired successor is reuse", jkt: "key", steps: []step{{time.Second, "rt-1", "rt-3", nil}, {2 * time.Second, "rt-2", "rt-4", store.ErrRefreshReused}},
			want: map[string]store.RefreshStatus{"rt-1": store.RefreshRevoked, "rt-2": store.RefreshRevoked, "rt-3": store.RefreshRevoked}},
		{name: "successor used", jkt: "key", steps: []step{{time.Second, "rt-2", "rt-3", nil}, {2 * time.Second, "rt-1", "rt-4", store.ErrRefreshReused}},
			want: map[string]store.RefreshStatus{"rt-1": store.RefreshRevoked, "rt-2": store.RefreshRevoked, "rt-3": store.RefreshRevoked}},
		{name: "after the grace", jkt: "key", steps: []step{{store.RefreshRetryGrace, "rt-1", "rt-3", store.ErrRefreshReused}},
			want: map[string]store.RefreshStatus{"rt-1": store.RefreshRevoked, "rt-2": store.RefreshRevoked}},
		{name: "unbound token", jkt: "", steps: []step{{time.Second, "rt-1", "rt-3", store.ErrRefreshReused}},
			want: map[string]store.RefreshStatus{"rt-1": store.RefreshRevoked, "rt-2": store.RefreshRevoked}},
	}
	for _, via := range []string{"RotateRefreshToken", "CommitDecision"} {
		for _, tt := range tests {
			t.Run(via+"/"+tt.name, func(t *testing.T) {
				s := open(t)
				ctx := t.Context()
				n := 0
				rotate := func(now time.Time, old, next string) error {
					rt := refreshToken(next, "fam-1")
					rt.JKT, rt.IssuedAt = tt.jkt, now
					if via == "RotateRefreshToken" {
						return s.RotateRefreshToken(ctx, now, old, rt)
					}
					n++
					_, err := s.CommitDecision(ctx, now, store.Decision{
						Rotate: &store.Rotation{OldID: old, Next: rt}, Audit: decision("sts", "client-1", n)})
					return err
				}
				first := refreshToken("rt-1", "fam-1")
				first.JKT = tt.jkt
				if err := s.CreateRefreshToken(ctx, first); err != nil {
					t.Fatal(err)
				}
				at := base.Add(time.Minute)
				if err := rotate(at, "rt-1", "rt-2"); err != nil {
					t.Fatal(err)
				}
				for i, st := range tt.steps {
					err := rotate(at.Add(st.after), st.old, st.next)
					if (st.wantErr == nil) != (err == nil) || (err != nil && !errors.Is(err, st.wantErr)) {
						t.Fatalf("step %d (%s after %v): err = %v, want %v", i, st.old, st.after, err, st.wantErr)
					}
				}
				for id, want := range tt.want {
					if got := mustRefresh(t, s, id); got.Status != want {
						t.Errorf("%s: status %s, want %s", id, got.Status, want)
					}
				}
			})
		}
	}
}
