package deptest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestForbidden lists generated packages, which exist only in a go list
// overlay, so that the check is shown to catch what it is for.
func TestForbidden(t *testing.T) {
	tests := []struct {
		name    string
		imports string
		want    string // a dependency that must be reported; "" for none
	}{
		{name: "database/sql", imports: "database/sql", want: "database/sql"},
		{name: "store", imports: module + "internal/store", want: module + "internal/store"},
		{name: "store backend", imports: module + "internal/store/sqlite", want: module + "internal/store/sqlite"},
		{name: "server", imports: module + "internal/server", want: module + "internal/server"},
		{name: "token endpoint", imports: module + "internal/token", want: module + "internal/token"},
		{name: "internal library is allowed", imports: module + "internal/jws"},
		{name: "standard library is allowed", imports: "net/http"},
	}
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "p.go")
			if err := os.WriteFile(src, []byte("package p\n\nimport _ \""+tt.imports+"\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// The package seems to be in a folder below this one, inside
			// the module, so that Go's internal rule lets it import
			// internal packages as a public package of the module can.
			overlay, err := json.Marshal(map[string]map[string]string{
				"Replace": {filepath.Join(here, "generated", "p.go"): src},
			})
			if err != nil {
				t.Fatal(err)
			}
			ov := filepath.Join(tmp, "overlay.json")
			if err := os.WriteFile(ov, overlay, 0o600); err != nil {
				t.Fatal(err)
			}
			bad, err := Forbidden(here, "-overlay", ov, module+"internal/deptest/generated")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && len(bad) > 0:
				t.Errorf("reported %v, want nothing", bad)
			case tt.want != "" && !slices.Contains(bad, tt.want):
				t.Errorf("reported %v, want %s among them", bad, tt.want)
			}
		})
	}
}
