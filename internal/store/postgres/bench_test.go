package postgres

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
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
// client_credentials token now: the two jtis and the audit record, sealed
// and appended to one instance's chain, in one statement. Decisions of one
// instance commit one after the other (each record's MAC covers the one
// before), so unlike ConsumeJTIs more goroutines cannot share a WAL flush;
// instances=4 shows four chains (four servers) sharing the database.
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
			now := time.Now()
			var n atomic.Int64
			b.SetParallelism(16)
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
		})
	}
}
