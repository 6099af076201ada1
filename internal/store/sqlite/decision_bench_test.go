package sqlite

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
)

// BenchmarkCommitDecision measures what the token endpoint writes per
// client_credentials token: two fresh random jtis and the audit record, on
// one instance's chain, durable (synchronous=FULL), from 16×GOMAXPROCS
// goroutines, so that the writer's group commit is at work. It is the
// figure the PostgreSQL backend's BenchmarkCommitDecision is compared with
// (docs/performance.md). cpu-us/op is the process's CPU time (user and
// system) per decision: SQLite runs in the process, so that is all of it.
//
//	go test -run '^$' -bench CommitDecision -benchtime 3s ./internal/store/sqlite/
func BenchmarkCommitDecision(b *testing.B) {
	s := openTest(b, tempDB(b), Options{AuditKey: storetest.AuditKey})
	now := time.Now()
	rec := store.AuditRecord{Instance: "sts", Time: now, Endpoint: "token", GrantType: "client_credentials",
		ClientID: "c", Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"}, Outcome: audit.OutcomeIssued}
	b.SetParallelism(16)
	cpu0 := cpuTime()
	batches0, ops0 := s.batches.Load(), s.batchedOps.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := s.CommitDecision(bg, now, store.Decision{
				JTIs: []store.JTI{
					{Key: fmt.Sprintf("a|%016x%016x", rand.Uint64(), rand.Uint64()), Expires: now.Add(time.Minute)},
					{Key: fmt.Sprintf("p|%016x%016x", rand.Uint64(), rand.Uint64()), Expires: now.Add(time.Minute)},
				},
				Audit: rec,
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
	if n := s.batches.Load() - batches0; n > 0 {
		b.ReportMetric(float64(s.batchedOps.Load()-ops0)/float64(n), "ops/batch")
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
