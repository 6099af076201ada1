//go:build !linux

package pgtest

import (
	"errors"
	"syscall"
)

// canSwitchUser is false: running the programs as another user is
// implemented for Linux only, where CI runs. Elsewhere the tests must not
// run as root.
const canSwitchUser = false

func sysProcAttr(*runAs) *syscall.SysProcAttr { return nil }

func lockThread() {}

func signalAll(int, syscall.Signal) error {
	return errors.New("pgtest: Pause and Resume are implemented for Linux only")
}

const (
	sigStop syscall.Signal = 0
	sigCont syscall.Signal = 0
)
