package server

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProcs(t *testing.T) {
	for _, tt := range []struct {
		storage   string
		def, cpus int
		want      int
	}{
		{"data/tillit.db", 2, 2, 3},
		{"sqlite:///var/lib/tillit/tillit.db", 8, 8, 9},
		// A container's CPU quota lowered the default: no P beyond it.
		{"data/tillit.db", 2, 8, 2},
		{"postgres://tillit@db/tillit", 2, 2, 2},
		{"postgresql://tillit@db/tillit", 4, 4, 4},
	} {
		if got := Procs(tt.storage, tt.def, tt.cpus); got != tt.want {
			t.Errorf("Procs(%q, %d, %d) = %d, want %d", tt.storage, tt.def, tt.cpus, got, tt.want)
		}
	}
}

// serve creates the SQLite file's folder on its first start, readable by
// its own user only; commands that only read name the missing folder
// instead of leaving an empty database in the wrong place.
func TestOpenStoreFolder(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	file := filepath.Join(base, "state", "sub", "tillit.db")

	_, err := openStore(ctx, file, nil, 0, false)
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(file)) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("open without create: %v, want an error naming %s", err, filepath.Dir(file))
	}
	if _, err := os.Stat(filepath.Join(base, "state")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open without create made a folder: %v", err)
	}

	st, err := openStore(ctx, "sqlite:"+file, nil, 0, true)
	if err != nil {
		t.Fatalf("open with create: %v", err)
	}
	st.Close()
	fi, err := os.Stat(filepath.Dir(file))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("folder mode %v, want 0700", perm)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("no database: %v", err)
	}

	// A file where the folder should be.
	notDir := filepath.Join(base, "plain")
	os.WriteFile(notDir, nil, 0o600)
	if _, err := openStore(ctx, filepath.Join(notDir, "tillit.db"), nil, 0, true); err == nil || !strings.Contains(err.Error(), "is not a folder") {
		t.Errorf("file as folder: %v", err)
	}
}
