package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(2, 3, 0) // 2 per second, bursts of 3
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("c1", now); !ok {
			t.Fatalf("burst event %d refused", i)
		}
	}
	ok, wait := l.Allow("c1", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("fourth event: ok %v wait %v, want refused for 500ms", ok, wait)
	}
	if ok, _ := l.Allow("c2", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("c1", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := l.Allow("c1", now.Add(500*time.Millisecond)); ok {
		t.Fatal("more than the rate allowed")
	}
}

func TestDisabled(t *testing.T) {
	var nilLimiter *Limiter
	for _, l := range []*Limiter{New(0, 10, 0), nilLimiter} {
		for i := 0; i < 1000; i++ {
			if ok, _ := l.Allow("x", time.Now()); !ok {
				t.Fatal("a disabled limiter refused")
			}
		}
	}
}

// Memory stays bounded: full buckets are dropped, and a full limiter
// refuses new keys instead of forgetting a busy one.
func TestBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(1, 1, 10)
	for i := 0; i < 10; i++ {
		l.Allow(fmt.Sprint(i), now)
	}
	if ok, _ := l.Allow("new", now); ok {
		t.Fatal("a new key was let in past MaxKeys")
	}
	if ok, _ := l.Allow("0", now); ok {
		t.Fatal("an emptied bucket was forgotten")
	}
	later := now.Add(2 * time.Second)
	if ok, _ := l.Allow("new", later); !ok {
		t.Fatal("refilled buckets were not dropped")
	}
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept, want 1", len(l.buckets))
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {1500 * time.Millisecond, 2}, {3 * time.Second, 3}} {
		if got := RetryAfter(tt.d); got != tt.want {
			t.Errorf("RetryAfter(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
