package server

import "testing"

func TestProcs(t *testing.T) {
	for _, tt := range []struct {
		storage string
		want    int
	}{
		{"data/tillit.db", 3},
		{"sqlite:///var/lib/tillit/tillit.db", 3},
		{"postgres://tillit@db/tillit", 2},
		{"postgresql://tillit@db/tillit", 2},
	} {
		if got := Procs(tt.storage, 2); got != tt.want {
			t.Errorf("Procs(%q, 2) = %d, want %d", tt.storage, got, tt.want)
		}
	}
}
