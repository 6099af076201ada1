package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestURL checks that each test gets its own empty schema, and that it is
// dropped at the end of the test.
func TestURL(t *testing.T) {
	ctx := t.Context()
	var name string
	t.Run("first", func(t *testing.T) {
		conn := connect(t, URL(t))
		if _, err := conn.Exec(ctx, "CREATE TABLE marker (x int)"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		conn := connect(t, URL(t))
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('marker') IS NOT NULL").Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Error("the second database holds the first one's table")
		}
		var dropped bool
		if err := conn.QueryRow(ctx, "SELECT NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", name).Scan(&dropped); err != nil {
			t.Fatal(err)
		}
		if !dropped {
			t.Errorf("schema %s of the finished test still exists", name)
		}
	})
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestStartStop runs a second server beside the package's one and checks
// that Stop ends it and removes its folder.
func TestStartStop(t *testing.T) {
	s, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.port == shared.port {
		t.Errorf("both servers listen on port %d", s.port)
	}
	url, err := s.CreateDatabase(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder %s after Stop: %v, want it removed", s.dir, err)
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("the stopped server still answers")
	}
	select {
	case <-s.exited:
	default:
		t.Error("the postgres process is still running after Stop")
	}
}

func TestVersionOrder(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		want int
	}{
		{name: "15", dir: "/usr/lib/postgresql/15/bin", want: 15},
		{name: "9.6 is older than 10", dir: "/usr/lib/postgresql/9.6/bin", want: 0},
		{name: "17", dir: "/usr/lib/postgresql/17/bin", want: 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.dir); got != tt.want {
				t.Errorf("versionOf(%q) = %d, want %d", tt.dir, got, tt.want)
			}
		})
	}
}

// TestMissingBinaries: without PostgreSQL the start fails, saying what to
// install; it is never a skip.
func TestMissingBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := versionedBins
	versionedBins = filepath.Join(t.TempDir(), "*", "bin")
	t.Cleanup(func() { versionedBins = old })

	s, err := Start(t.Context())
	if err == nil {
		s.Stop()
		t.Fatal("Start succeeded without initdb and postgres")
	}
	for _, want := range []string{"initdb and postgres were not found", "apt-get install postgresql"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %q", err, want)
		}
	}
}
