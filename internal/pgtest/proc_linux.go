package pgtest

import (
	"runtime"
	"syscall"
)

const canSwitchUser = true

// sysProcAttr runs a program as the given user (nil: the current one) and
// has the kernel kill it when the thread that started it ends.
func sysProcAttr(as *runAs) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if as != nil {
		attr.Credential = &syscall.Credential{Uid: as.uid, Gid: as.gid}
	}
	return attr
}

func lockThread() { runtime.LockOSThread() }
