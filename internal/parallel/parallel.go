// Package parallel runs the iterations of a loop on every core, for the
// few places where a start handles every record of a large registry.
package parallel

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls fn(i) for every i in [0, n): on one goroutine when n is below
// min, else on GOMAXPROCS goroutines taking the next i as they go. It
// returns the errors joined; a goroutine stops at its first error, the
// others finish their part.
func For(n, min int, fn func(i int) error) error {
	if n < min || n < 2 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	workers := runtime.GOMAXPROCS(0)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if errs[w] = fn(i); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
