package postgres

import (
	"context"
	"testing"

	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, pgtest.URL(t), Options{AuditKey: storetest.AuditKey})
	})
}

// openTest opens a Store on the database at url and closes it when t ends.
func openTest(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformanceTampered(t *testing.T) {
	storetest.RunTampered(t, func(t *testing.T) storetest.Tampered {
		url := pgtest.URL(t)
		opts := Options{AuditKey: storetest.AuditKey}
		return storetest.Tampered{
			Store: openTest(t, url, opts),
			Exec: func(t *testing.T, query string) {
				if _, err := connect(t, url).Exec(bg, query); err != nil {
					t.Fatal(err)
				}
			},
			Reopen: func(t *testing.T) store.Store { return openTest(t, url, opts) },
		}
	})
}
