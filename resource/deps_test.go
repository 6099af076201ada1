package resource

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerDependencies keeps the package usable from other modules and
// light for APIs: Go refuses their imports of anything that pulls in
// tillit/internal, and an API should not link a database driver because it
// validates tokens.
func TestNoServerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/tillit-sts/tillit/internal",
		"database/sql",
		"modernc.org/sqlite",
		"github.com/jackc/pgx",
		"github.com/lib/pq",
		"github.com/mattn/go-sqlite3",
	}
	for _, p := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, f+"/") {
				t.Errorf("resource depends on %s", p)
			}
		}
	}
}
