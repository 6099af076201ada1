//go:build !linux

package pgtest

import "syscall"

// canSwitchUser is false: running the programs as another user is
// implemented for Linux only, where CI runs. Elsewhere the tests must not
// run as root.
const canSwitchUser = false

func sysProcAttr(*runAs) *syscall.SysProcAttr { return nil }

func lockThread() {}
