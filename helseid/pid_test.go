package helseid

import (
	"errors"
	"testing"
)

func TestParsePID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    PID
		wantErr error
	}{
		{name: "fødselsnummer from the profile's example token", in: "17056600574"},
		{name: "Tenor synthetic (month + 80)", in: "06828399789", want: PID{Synthetic: true}},
		{name: "NAV synthetic (month + 40)", in: mustComplete(t, "064583997"), want: PID{Synthetic: true}},
		{name: "D-number (day + 40)", in: mustComplete(t, "570566005"), want: PID{DNumber: true}},
		{name: "synthetic D-number", in: mustComplete(t, "578566005"), want: PID{DNumber: true, Synthetic: true}},
		{name: "29 February", in: mustComplete(t, "290200123")},

		{name: "first check digit wrong", in: "17056600584", wantErr: ErrPIDCheck},
		{name: "second check digit wrong", in: "17056600575", wantErr: ErrPIDCheck},
		{name: "ten digits", in: "1705660057", wantErr: ErrPIDFormat},
		{name: "twelve digits", in: "170566005740", wantErr: ErrPIDFormat},
		{name: "a letter", in: "1705660057X", wantErr: ErrPIDFormat},
		{name: "spaces", in: "170566 0574", wantErr: ErrPIDFormat},
		{name: "empty", in: "", wantErr: ErrPIDFormat},
		{name: "day zero", in: mustComplete(t, "000566005"), wantErr: ErrPIDDate},
		{name: "day 32", in: mustComplete(t, "320566005"), wantErr: ErrPIDDate},
		{name: "31 April", in: mustComplete(t, "310466005"), wantErr: ErrPIDDate},
		{name: "30 February", in: mustComplete(t, "300266005"), wantErr: ErrPIDDate},
		{name: "month 13", in: mustComplete(t, "171366005"), wantErr: ErrPIDDate},
		{name: "month 60", in: mustComplete(t, "176066005"), wantErr: ErrPIDDate},
		{name: "D-number day 72", in: mustComplete(t, "720566005"), wantErr: ErrPIDDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePID(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParsePID(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParsePID(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// mustComplete finds an individual number near nine's for which check
// digits exist, and completes it.
func mustComplete(t *testing.T, nine string) string {
	t.Helper()
	for i := 0; i < 10; i++ {
		n := nine[:8] + string(rune('0'+(int(nine[8]-'0')+i)%10))
		if pid, ok := CompletePID(n); ok {
			return pid
		}
	}
	t.Fatalf("no pid completes %s", nine)
	return ""
}

func TestCompletePID(t *testing.T) {
	if got, ok := CompletePID("170566005"); !ok || got != "17056600574" {
		t.Errorf("CompletePID = %q, %v; want 17056600574", got, ok)
	}
	for _, bad := range []string{"", "17056600", "1705660050", "17056600x"} {
		if got, ok := CompletePID(bad); ok {
			t.Errorf("CompletePID(%q) = %q, want false", bad, got)
		}
	}
	// Some individual numbers have no first check digit: CompletePID
	// says so rather than return a number ParsePID refuses.
	refused := 0
	for i := range 1000 {
		nine := "170566" + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
		pid, ok := CompletePID(nine)
		if !ok {
			refused++
			continue
		}
		if _, err := ParsePID(pid); err != nil {
			t.Fatalf("CompletePID(%s) = %s, which ParsePID refuses: %v", nine, pid, err)
		}
	}
	if refused == 0 {
		t.Error("every individual number completed; expected some without check digits")
	}
}

func FuzzParsePID(f *testing.F) {
	f.Add("17056600574")
	f.Add("06828399789")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParsePID(s)
	})
}
