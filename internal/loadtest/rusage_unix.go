//go:build unix

package loadtest

import (
	"fmt"
	"syscall"
	"time"
)

// selfCPU returns the user plus system CPU time this process has used so
// far: the load generator's cost, its garbage collector included.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("loadtest: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
