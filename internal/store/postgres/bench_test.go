package postgres

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
)

// BenchmarkConsumeJTIs measures the token endpoint's replay write: one call
// with two fresh random keys (the assertion's and the DPoP proof's jti) per
// token, from GOMAXPROCS goroutines and from 16×GOMAXPROCS, with the
// default pool and with one connection per goroutine. The server is
// pgtest's on loopback: without fsync unless TILLIT_PGTEST_FSYNC=on, which
// the benchmark's name then says.
//
//	TILLIT_PGTEST_FSYNC=on go test -run '^$' -bench ConsumeJTIs -benchtime 3s ./internal/store/postgres/
func BenchmarkConsumeJTIs(b *testing.B) {
	fsync := "off"
	if os.Getenv(pgtest.EnvFsync) == "on" {
		fsync = "on"
	}
	for _, par := range []int{1, 16} {
		for _, conns := range []string{"default", "per-goroutine"} {
			b.Run(fmt.Sprintf("fsync=%s/goroutines=%dxGOMAXPROCS/pool=%s", fsync, par, conns), func(b *testing.B) {
				s := openTest(b, pgtest.URL(b), Options{configure: func(c *pgxpool.Config) {
					if conns == "per-goroutine" {
						c.MaxConns = int32(par * runtime.GOMAXPROCS(0))
					}
				}})
				warm(b, s)
				now := time.Now()
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						err := s.ConsumeJTIs(bg, now, []store.JTI{
							{Key: fmt.Sprintf("a|%016x%016x", rand.Uint64(), rand.Uint64()), Expires: now.Add(time.Minute)},
							{Key: fmt.Sprintf("p|%016x%016x", rand.Uint64(), rand.Uint64()), Expires: now.Add(time.Minute)},
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// warm opens every connection the pool may have, so that connecting is not
// counted.
func warm(b *testing.B, s *Store) {
	var conns []*pgxpool.Conn
	for range s.pool.Config().MaxConns {
		c, err := s.pool.Acquire(bg)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// BenchmarkCommitDecision measures what the token endpoint writes per
// client_credentials token: the two jtis and the audit record, sealed and
// appended to one instance's chain, from 16×GOMAXPROCS goroutines.
// instances=4 shows four chains (four servers) sharing the database.
//
// Besides ns/op it reports decisions/s, the CPU time per decision of this
// process (cpu-us/op: the backend, pgx, the benchmark) and of the
// PostgreSQL server's processes (pg-cpu-us/op: the backends, the WAL
// writer and the rest), which share the machine's cores, and how many
// decisions shared a transaction (decisions/tx).
//
//	TILLIT_PGTEST_FSYNC=on go test -run '^$' -bench CommitDecision -benchtime 3s ./internal/store/postgres/
func BenchmarkCommitDecision(b *testing.B) {
	fsync := "off"
	if os.Getenv(pgtest.EnvFsync) == "on" {
		fsync = "on"
	}
	for _, instances := range []int{1, 4} {
		b.Run(fmt.Sprintf("fsync=%s/goroutines=16xGOMAXPROCS/instances=%d", fsync, instances), func(b *testing.B) {
			s := openTest(b, pgtest.URL(b), Options{AuditKey: storetest.AuditKey, configure: func(c *pgxpool.Config) {
				c.MaxConns = int32(16 * runtime.GOMAXPROCS(0))
			}})
			warm(b, s)
			server := serverCPU(b, s)
			now := time.Now()
			var n atomic.Int64
			b.SetParallelism(16)
			cpu0, server0, stats0 := cpuTime(), server(), s.stats()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				instance := fmt.Sprintf("sts-%d", n.Add(1)%int64(instances))
				for pb.Next() {
					_, err := s.CommitDecision(bg, now, store.Decision{
						JTIs: []store.JTI{
							{Key: fmt.Sprintf("a|%016x%016x", rand.Uint64(), rand.Uint64()), Expires: now.Add(time.Minute)},
							{Key: fmt.Sprintf("p|%016x%016x", rand.Uint64(), rand.Uint64()), Expires: now.Add(time.Minute)},
						},
						Audit: auditRecord(instance, 0),
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpuTime()-cpu0, server()-server0)
			if st := s.stats(); st.transactions > stats0.transactions {
				b.ReportMetric(float64(st.decisions-stats0.decisions)/float64(st.transactions-stats0.transactions), "decisions/tx")
			}
		})
	}
}

// reportCPU adds the rate and the CPU times per operation.
func reportCPU(b *testing.B, cpu, server time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
	if server > 0 {
		b.ReportMetric(float64(server.Microseconds())/float64(b.N), "pg-cpu-us/op")
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU returns a func that reads the CPU time the PostgreSQL server
// has used so far: its postmaster's (with the children it has reaped) and
// that of every process the postmaster started, from /proc. The server is
// pgtest's, so every one of them serves this benchmark. Where /proc cannot
// tell, the func returns 0 and the figure is left out.
func serverCPU(b *testing.B, s *Store) func() time.Duration {
	var backend int
	if err := s.pool.QueryRow(bg, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	stat := func(pid int) (ppid int, cpu time.Duration, ok bool) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0, false
		}
		// The command name (field 2) is in parentheses and may hold
		// spaces; the fields after it are numbers.
		i := bytes.LastIndexByte(raw, ')')
		if i < 0 {
			return 0, 0, false
		}
		f := strings.Fields(string(raw[i+1:]))
		if len(f) < 15 {
			return 0, 0, false
		}
		ppid, _ = strconv.Atoi(f[1])
		var ticks int64
		for _, v := range f[11:15] { // utime, stime, cutime, cstime
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
		const userHZ = 100 // the unit of /proc times on Linux
		return ppid, time.Duration(ticks) * time.Second / userHZ, true
	}
	postmaster, _, ok := stat(backend)
	if !ok {
		return func() time.Duration { return 0 }
	}
	return func() time.Duration {
		_, total, _ := stat(postmaster)
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ppid, cpu, ok := stat(pid); ok && ppid == postmaster {
				total += cpu
			}
		}
		return total
	}
}
