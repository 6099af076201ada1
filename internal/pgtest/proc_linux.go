package pgtest

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
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

// signalAll sends sig to the postmaster pid and to each of its children.
// The children (backends and auxiliary processes) each start a session of
// their own, so no process group holds them all: they are found in /proc
// by their parent. The postmaster is signalled first, so that a stopped
// postmaster forks no child that the scan misses.
func signalAll(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if err := syscall.Kill(child, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)
