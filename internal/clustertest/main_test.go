package clustertest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/pgtest"
)

// tillitBin is the tillit binary TestMain built.
var tillitBin string

// TestMain builds cmd/tillit into a temporary folder, runs the tests with
// PostgreSQL available, and removes the binary.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "tillit-clustertest-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		os.Exit(1)
	}
	tillitBin = filepath.Join(dir, "tillit")
	args := []string{"build", "-o", tillitBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	start := time.Now()
	out, err := exec.Command("go", append(args, mainPackage)...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "clustertest: go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Printf("clustertest: built tillit in %v (race detector: %v)\n", time.Since(start).Round(time.Millisecond), raceEnabled)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	module      = "github.com/tillit-sts/tillit"
	mainPackage = module + "/cmd/tillit"
)

// trackSources looks at every file of the module that goes into the
// binary. go test keeps a passing result until a file the test process
// looked at changes; the binary is made by go build, in another process,
// from files this one would otherwise never look at, so a change to the
// server would not run these tests again. It must run inside a test:
// go test notes what a test process looks at only once m.Run has begun.
var trackSources = sync.OnceValue(func() error {
	format := `{{with .Module}}{{if eq .Path "` + module + `"}}{{$.Dir}}{{range $.EmbedFiles}}{{"\t"}}{{$.Dir}}/{{.}}{{end}}{{"\n"}}{{end}}{{end}}`
	out, err := exec.Command("go", "list", "-deps", "-f", format, mainPackage).Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		paths := strings.Split(line, "\t")
		entries, err := os.ReadDir(paths[0])
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() {
				paths = append(paths, filepath.Join(paths[0], e.Name()))
			}
		}
		for _, p := range paths[1:] {
			if _, err := os.Stat(p); err != nil {
				return err
			}
		}
	}
	return nil
})
