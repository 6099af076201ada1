package helseid

import "testing"

func TestValidOrgNumber(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"Norsk Helsenett", "994598759", true},
		{"synthetic test organisation", "313231593", true},
		{"wrong check digit", "994598758", false},
		{"eight digits", "99459875", false},
		{"ten digits", "9945987590", false},
		{"letters", "99459875X", false},
		{"spaces", "994 598 759", false},
		{"empty", "", false},
		{"check digit ten is never assigned", "000000060", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidOrgNumber(tt.in); got != tt.want {
				t.Fatalf("ValidOrgNumber(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
