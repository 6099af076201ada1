package server

import "testing"

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
