// Package federationtest logs a person in through two running tillit
// serve processes: one is the other's upstream OpenID Connect provider.
package federationtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tillit-sts/tillit/internal/browsertest"
)

// tillitBin is the tillit binary TestMain built.
var tillitBin string

const mainPackage = "github.com/tillit-sts/tillit/cmd/tillit"

// TestMain builds cmd/tillit as an operator would, runs the tests against
// it in the package's browser, and removes it. The build and the process
// harness mirror internal/rptest's on purpose: that test must import no
// Tillit package, so there is no shared one for both to use.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tillit-federationtest-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "federationtest:", err)
		os.Exit(1)
	}
	tillitBin = filepath.Join(dir, "tillit")
	if out, err := exec.Command("go", "build", "-o", tillitBin, mainPackage).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "federationtest: go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := browsertest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// lookAtSources stats every Go file of the module that goes into the
// binary: go test caches a passing result until a file the test process
// looked at changes, and the binary is built by another process, so
// without this a change to the server would not run the test again.
var lookAtSources = sync.OnceValue(func() error {
	const format = `{{if .Module}}{{if eq .Module.Path "github.com/tillit-sts/tillit"}}{{.Dir}}{{end}}{{end}}`
	out, err := exec.Command("go", "list", "-deps", "-f", format, mainPackage).Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	for _, d := range strings.Fields(string(out)) {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(d, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
})
