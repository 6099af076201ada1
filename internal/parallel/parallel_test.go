package parallel

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestFor(t *testing.T) {
	for _, tt := range []struct {
		name     string
		n, min   int
		failAt   int // -1: none
		wantSeen int // -1: at least one and at most n
	}{
		{"nothing", 0, 0, -1, 0},
		{"one goroutine", 10, 100, -1, 10},
		{"every core", 10000, 100, -1, 10000},
		{"an error on one goroutine stops it there", 10, 100, 3, 4},
		{"an error on every core", 10000, 100, 5000, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen := make([]atomic.Int32, tt.n)
			var count atomic.Int64
			err := For(tt.n, tt.min, func(i int) error {
				seen[i].Add(1)
				count.Add(1)
				if i == tt.failAt {
					return fmt.Errorf("item %d: %w", i, errBoom)
				}
				return nil
			})
			if (tt.failAt >= 0) != errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want failure at %d", err, tt.failAt)
			}
			for i := range seen {
				if seen[i].Load() > 1 {
					t.Fatalf("item %d ran %d times", i, seen[i].Load())
				}
			}
			switch got := int(count.Load()); {
			case tt.wantSeen >= 0 && got != tt.wantSeen:
				t.Errorf("%d items ran, want %d", got, tt.wantSeen)
			case tt.wantSeen < 0 && (got < 1 || got > tt.n):
				t.Errorf("%d items ran", got)
			}
		})
	}
}

var errBoom = errors.New("boom")
