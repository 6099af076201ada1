package loadtest

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcessStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 1234 and 66 below.
	const tail = " S 1 1234 1234 0 -1 4194560 1000 0 0 0 1234 66 0 0 20 0 9 0 100 1000000 500 18446744073709551615\n"
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "plain", in: "4242 (tillit)" + tail, want: 13 * time.Second},
		{name: "command with spaces and parentheses", in: "4242 (node (x) y)" + tail, want: 13 * time.Second},
		{name: "no command", in: "4242 tillit S 1", wantErr: "stat: no command name"},
		{name: "cut short", in: "4242 (tillit) S 1 1234 1234 0 -1 4194560 1000 0 0 0 1234", wantErr: "stat: too few fields"},
		{name: "utime not a number", in: "4242 (tillit) S 1 1234 1234 0 -1 4194560 1000 0 0 0 x 66 0", wantErr: "stat: utime: "},
		{name: "stime not a number", in: "4242 (tillit) S 1 1234 1234 0 -1 4194560 1000 0 0 0 1 -6 0", wantErr: "stat: stime: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcessStat([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseMachineStat(t *testing.T) {
	const cpus = "cpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\n"
	tests := []struct {
		name    string
		in      string
		want    machineTimes
		wantErr string
	}{
		{
			name: "two cores",
			in:   "cpu  100 10 50 800 20 5 5 10 7 0\n" + cpus + "intr 1 2 3\nctxt 99\n",
			// guest (7) is inside user already.
			want: machineTimes{cores: 2, total: 1000, idle: 820, iowait: 20, steal: 10},
		},
		{name: "old kernel without steal", in: "cpu  1 2 3 4 5 6 7\n", wantErr: "cpu line has too few fields"},
		{name: "not a number", in: "cpu  1 2 3 x 5 6 7 8\n", wantErr: "cpu line: "},
		{name: "no cpu line", in: "intr 1\n", wantErr: "no cpu line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMachineStat([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestProcOfThisProcess reads the real files, where the test runs on Linux.
func TestProcOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	threads, err := threadCPU(os.Getpid())
	if err != nil || len(threads) == 0 {
		t.Fatalf("threads %v, %v", threads, err)
	}
	m, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if m.cores < 1 || m.total == 0 || m.idle > m.total {
		t.Fatalf("machine %+v", m)
	}
}

func TestBusiestThread(t *testing.T) {
	before := map[int]time.Duration{1: time.Second, 2: 5 * time.Second, 3: time.Second}
	after := map[int]time.Duration{1: 3 * time.Second, 2: 6 * time.Second, 4: 500 * time.Millisecond}
	// Thread 1 used 2 s; 2 used 1 s; 3 ended; 4 started and used 0.5 s.
	if got := busiestThread(before, after); got != 2*time.Second {
		t.Fatalf("busiest %v, want 2s", got)
	}
}
