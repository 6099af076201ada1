package helseid

import "testing"

func TestValidHPRNumber(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"nine digits", "431001110", true},
		{"seven digits", "1234567", true},
		{"ten digits", "4310011100", false},
		{"letter", "43100111A", false},
		{"empty", "", false},
		{"sign", "-43100111", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidHPRNumber(tt.in); got != tt.want {
				t.Fatalf("ValidHPRNumber(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestAssuranceLevel(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantOK         bool
	}{
		{"level 4 is high", "4", AssuranceHigh, true},
		{"level 3 is substantial", "3", AssuranceSubstantial, true},
		{"level 2 is low", "2", AssuranceLow, true},
		{"level 5 is unknown", "5", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AssuranceLevel(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("AssuranceLevel(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
