package resource_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/resource"
)

func TestMemoryReplayCache(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	c := resource.NewMemoryReplayCache(2)
	steps := []struct {
		name    string
		key     string
		now     time.Duration // after t0
		exp     time.Duration // after t0
		wantErr error
	}{
		{name: "first use", key: "a", now: 0, exp: 60 * time.Second},
		{name: "replay", key: "a", now: time.Second, exp: 61 * time.Second, wantErr: resource.ErrReplay},
		{name: "second key", key: "b", now: 2 * time.Second, exp: 62 * time.Second},
		{name: "full: refused, nothing forgotten", key: "c", now: 3 * time.Second, exp: 63 * time.Second, wantErr: resource.ErrReplayCacheFull},
		{name: "still remembered when full", key: "a", now: 4 * time.Second, exp: 64 * time.Second, wantErr: resource.ErrReplay},
		{name: "a expired: room again", key: "c", now: 60 * time.Second, exp: 120 * time.Second},
		{name: "an expired key may come back", key: "a", now: 62 * time.Second, exp: 122 * time.Second},
		{name: "already expired is not kept", key: "d", now: 200 * time.Second, exp: 100 * time.Second},
	}
	for _, s := range steps {
		err := c.Use(ctx, s.key, t0.Add(s.now), t0.Add(s.exp))
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.wantErr)
		}
	}
	if !errors.Is(resource.ErrReplayCacheFull, resource.ErrReplayUnavailable) {
		t.Fatal("ErrReplayCacheFull does not match ErrReplayUnavailable")
	}
}

// TestMemoryReplayCacheConcurrent: of 50 goroutines that use one key, one
// wins; the same for each of 20 keys at once.
func TestMemoryReplayCacheConcurrent(t *testing.T) {
	c := resource.NewMemoryReplayCache(0)
	now := time.Now()
	var wins [20]atomic.Int32
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for k := range wins {
				key := fmt.Sprint("key-", (k+g)%len(wins))
				if c.Use(context.Background(), key, now, now.Add(time.Minute)) == nil {
					wins[(k+g)%len(wins)].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range wins {
		if n := wins[k].Load(); n != 1 {
			t.Fatalf("key %d won %d times", k, n)
		}
	}
	if c.Len() != len(wins) {
		t.Fatalf("Len %d", c.Len())
	}
}
