package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat and /proc/stat. The
// kernel reports them in USER_HZ, which is part of its ABI and is 100 on
// every architecture Go runs on, whatever CONFIG_HZ the kernel was built
// with.
const userHZ = 100

// tick is one USER_HZ tick. Over a run of seconds the 10 ms resolution is
// far below the CPU time measured.
const tick = time.Second / userHZ

// maxProcFile bounds what is read from /proc: the first line of /proc/stat
// and all of /proc/PID/stat are well under 1 KiB.
const maxProcFile = 64 << 10

// processCPU returns the user plus system CPU time that process pid has
// used so far, all its threads included.
func processCPU(pid int) (time.Duration, error) {
	b, err := readProc(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: server pid %d: %w", pid, err)
	}
	d, err := parseProcessStat(b)
	if err != nil {
		return 0, fmt.Errorf("loadtest: server pid %d: %w", pid, err)
	}
	return d, nil
}

// threadCPU returns the CPU time of each thread of process pid, by thread
// ID. A server whose busiest thread is near one core while the machine has
// idle CPU is bound by that thread: Node's event loop, say.
func threadCPU(pid int) (map[int]time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("loadtest: server pid %d: %w", pid, err)
	}
	out := make(map[int]time.Duration, len(entries))
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := readProc(dir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread has ended since ReadDir
		}
		if d, err := parseProcessStat(b); err == nil {
			out[tid] = d
		}
	}
	return out, nil
}

// busiestThread is the largest CPU time a thread used between two
// readings of threadCPU; threads that started or ended in between count
// from zero or not at all.
func busiestThread(before, after map[int]time.Duration) time.Duration {
	var most time.Duration
	for tid, a := range after {
		most = max(most, a-before[tid])
	}
	return most
}

// parseProcessStat reads utime and stime, fields 14 and 15 of
// /proc/PID/stat (proc(5)). The second field, the command name in
// parentheses, may itself hold spaces and parentheses, so the fields are
// counted from the last ")".
func parseProcessStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 15-3+1 {
		return 0, errors.New("stat: too few fields")
	}
	utime, err := strconv.ParseUint(string(f[14-3]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(f[15-3]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return time.Duration(utime+stime) * tick, nil
}

// machineTimes are the machine's CPU times summed over all cores, in ticks.
type machineTimes struct {
	cores int
	total uint64
	// idle counts idle and iowait: time no task wanted the CPU.
	idle uint64
	// iowait is the part of idle in which a task waited for the disk:
	// fsync, for a server that makes its writes durable.
	iowait uint64
	// steal is time the hypervisor gave to another guest although this one
	// had work: on a shared VM it is CPU the benchmark did not get.
	steal uint64
}

func machineCPU() (machineTimes, error) {
	b, err := readProc("/proc/stat")
	if err != nil {
		return machineTimes{}, fmt.Errorf("loadtest: %w", err)
	}
	m, err := parseMachineStat(b)
	if err != nil {
		return machineTimes{}, fmt.Errorf("loadtest: /proc/stat: %w", err)
	}
	return m, nil
}

// parseMachineStat reads the "cpu" line of /proc/stat (user nice system
// idle iowait irq softirq steal guest guest_nice) and counts the "cpuN"
// lines. guest and guest_nice are already inside user and nice, so they are
// not added again.
func parseMachineStat(b []byte) (machineTimes, error) {
	var m machineTimes
	found := false
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 0 || !bytes.HasPrefix(f[0], []byte("cpu")) {
			continue
		}
		if len(f[0]) > 3 {
			m.cores++
			continue
		}
		if len(f) < 9 {
			return m, errors.New("cpu line has too few fields")
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(string(f[i+1]), 10, 64)
			if err != nil {
				return m, fmt.Errorf("cpu line: %w", err)
			}
			v[i] = n
		}
		for _, n := range v {
			m.total += n
		}
		m.idle = v[3] + v[4]
		m.iowait = v[4]
		m.steal = v[7]
		found = true
	}
	if !found {
		return m, errors.New("no cpu line")
	}
	return m, nil
}

func readProc(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProcFile))
}
