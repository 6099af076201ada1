package sqlite

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// BenchmarkConsumeJTIs measures the token endpoint's replay write: one call
// with two fresh keys (the assertion's and the DPoP proof's jti) per token,
// against a file on disk, from GOMAXPROCS goroutines (about one call in
// flight per CPU: batches of one) and from 16×GOMAXPROCS (group commit).
// ns/op is wall time per call across all goroutines; ops/batch is how many
// calls shared one commit.
//
// Real jtis are random (UUIDs), so each key lands on another leaf of the
// B-tree and a commit writes about one page per key; sequential keys share
// pages and show the cost of the transaction machinery alone.
//
//	go test -run '^$' -bench ConsumeJTIs -benchtime 3s ./internal/store/sqlite/
func BenchmarkConsumeJTIs(b *testing.B) {
	var seq atomic.Int64
	keyFuncs := []struct {
		name string
		key  func(kind string) string
	}{
		{"random", func(kind string) string {
			return fmt.Sprintf("%s:%016x%016x", kind, rand.Uint64(), rand.Uint64())
		}},
		{"sequential", func(kind string) string {
			return fmt.Sprintf("%s:%020d", kind, seq.Add(1))
		}},
	}
	for _, sync := range []string{SynchronousFull, SynchronousNormal} {
		for _, keys := range keyFuncs {
			for _, par := range []int{1, 16} {
				name := fmt.Sprintf("synchronous=%s/keys=%s/goroutines=%dxGOMAXPROCS", sync, keys.name, par)
				b.Run(name, func(b *testing.B) {
					s := openTest(b, tempDB(b), Options{Synchronous: sync})
					now := time.Now()
					b.SetParallelism(par)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							err := s.ConsumeJTIs(bg, now, []store.JTI{
								{Key: keys.key("assertion"), Expires: now.Add(time.Minute)},
								{Key: keys.key("dpop"), Expires: now.Add(time.Minute)},
							})
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.StopTimer()
					if batches := s.batches.Load(); batches > 0 {
						b.ReportMetric(float64(s.batchedOps.Load())/float64(batches), "ops/batch")
					}
				})
			}
		}
	}
}
