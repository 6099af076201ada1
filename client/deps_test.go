package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoInternalDependencies keeps the package usable from other modules:
// Go refuses their imports of anything that pulls in tillit/internal.
func TestNoInternalDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/tillit-sts/tillit/internal") {
			t.Errorf("client depends on %s", p)
		}
	}
}
