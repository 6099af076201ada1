// Package deptest checks that a public package (client, resource, dpop,
// keyfile, helseid) does not link the token service: its store, a database
// driver, or a server package.
//
// Go's internal rule limits direct imports only, so a public package may
// use an internal library such as internal/jws; what it must not do is pull
// in the server, which would make every client and API carry the store and
// its drivers, and tie them to the server's internals.
package deptest

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tillit-sts/tillit/"

// forbidden are the import paths, each with everything below it, that a
// public package must not depend on, directly or through another package.
var forbidden = []string{
	// The store and its backends.
	module + "internal/store",
	// Database drivers, ours and the usual others.
	"database/sql",
	"modernc.org/sqlite",
	"github.com/jackc/pgx",
	"github.com/lib/pq",
	"github.com/mattn/go-sqlite3",
	// The server and the packages only it uses.
	module + "internal/server",
	module + "internal/servertest",
	module + "internal/token",
	module + "internal/clientauth",
	module + "internal/registry",
	module + "internal/config",
	module + "internal/keys",
	module + "internal/audit",
	module + "internal/metrics",
	module + "internal/ratelimit",
	module + "internal/requestid",
	module + "internal/pgtest",
}

// Forbidden runs go list -deps with args in dir and returns every
// dependency of the listed packages that a public package must not have.
func Forbidden(dir string, args ...string) ([]string, error) {
	cmd := exec.Command("go", append([]string{"list", "-deps"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("go list: %v: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("go list: %v", err)
	}
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, f+"/") {
				bad = append(bad, p)
				break
			}
		}
	}
	return bad, nil
}

// Check fails t for every forbidden dependency of the package in the
// current directory, which is where go test runs a package's tests.
func Check(t testing.TB) {
	t.Helper()
	bad, err := Forbidden(".", ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bad {
		t.Errorf("depends on %s", p)
	}
}
