package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// TestBenchArguments covers everything refused before any request. The
// issuer does not resolve, so a test that got as far as the network would
// fail with another message.
func TestBenchArguments(t *testing.T) {
	key := writeTestKey(t)
	base := []string{"bench", "token", "--issuer", "https://sts.invalid", "--client-id", "c1", "--key", key}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "bench alone", args: []string{"bench"}, wantCode: 2, wantStderr: "Usage: tillit bench <subcommand>"},
		{name: "unknown subcommand", args: []string{"bench", "api"}, wantCode: 2, wantStderr: `tillit bench: unknown subcommand "api"`},
		{name: "nothing", args: []string{"bench", "token"}, wantCode: 2, wantStderr: "tillit bench token: --issuer, --client-id and --key are required\n"},
		{name: "extra argument", args: with("nhn:deft/api"), wantCode: 2, wantStderr: `tillit bench token: unexpected argument "nhn:deft/api"`},
		{name: "unknown flag", args: with("--qps", "10"), wantCode: 2, wantStderr: "flag provided but not defined: -qps"},
		{name: "zero clients", args: with("-c", "0"), wantCode: 2, wantStderr: "tillit bench token: --concurrency must be between 1 and 10000\n"},
		{name: "too many clients", args: with("--concurrency", "10001"), wantCode: 2, wantStderr: "tillit bench token: --concurrency must be between 1 and 10000\n"},
		{name: "zero duration", args: with("--duration", "0s"), wantCode: 2, wantStderr: "tillit bench token: --duration must be positive\n"},
		{name: "duration without unit", args: with("--duration", "10"), wantCode: 2, wantStderr: `invalid value "10" for flag -duration`},
		{name: "negative warm-up", args: with("--warmup", "-1s"), wantCode: 2, wantStderr: "tillit bench token: --warmup must not be negative\n"},
		{name: "zero timeout", args: with("--timeout", "0s"), wantCode: 2, wantStderr: "tillit bench token: --timeout must be positive\n"},
		{name: "negative rate", args: with("--rate", "-5"), wantCode: 2, wantStderr: "tillit bench token: --rate must be a positive number of tokens per second, or 0\n"},
		{name: "negative pid", args: with("--server-pid", "-1"), wantCode: 2, wantStderr: "tillit bench token: --server-pid must be a process ID\n"},
		{name: "pid not a number", args: with("--server-pid", "tillit"), wantCode: 2, wantStderr: `invalid value "tillit" for flag -server-pid`},
		{name: "fresh nonce with Bearer", args: with("--bearer", "--fresh-nonce"), wantCode: 2, wantStderr: "tillit bench token: --fresh-nonce is about DPoP nonces; --bearer sends no DPoP proof\n"},
		{name: "empty scope", args: with("--scope", " "), wantCode: 2, wantStderr: `invalid value " " for flag -scope: empty scope`},
		{name: "connect not host:port", args: with("--connect", "sts.example.org"), wantCode: 2, wantStderr: `tillit bench token: --connect "sts.example.org": want HOST:PORT` + "\n"},
		{name: "key file missing", args: []string{"bench", "token", "--issuer", "https://sts.invalid", "--client-id", "c1", "--key", key + ".missing"}, wantCode: 1, wantStderr: "tillit bench: keyfile: open " + key + ".missing: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			if stdout != "" {
				t.Fatalf("stdout %q", stdout)
			}
		})
	}
}

// TestBenchToken runs the command against a real Tillit. The command uses
// the real clock, so the server's fake clock is set to now: the runs are
// far shorter than the assertion lifetime and the proof window.
func TestBenchToken(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{Clock: servertest.NewClock(time.Now())})
	key := filepath.Join(t.TempDir(), "deft.jwk")
	if err := keyfile.WritePrivate(key, srv.Key(t, "deft-client")); err != nil {
		t.Fatal(err)
	}
	args := func(extra ...string) []string {
		return append([]string{"bench", "token", "--issuer", srv.URL, "--client-id", "deft-client",
			"--scope", "nhn:deft/api", "-c", "2", "--duration", "600ms", "--warmup", "300ms"}, extra...)
	}

	t.Run("JSON", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, args("--key", key, "--fresh-nonce", "--json")...)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		var res struct {
			Mode            string  `json:"mode"`
			Tokens          int64   `json:"tokens"`
			TokensPerS      float64 `json:"tokens_per_s"`
			NonceRoundTrips int64   `json:"nonce_round_trips"`
			ErrorsTotal     int64   `json:"errors_total"`
			GeneratorMS     float64 `json:"generator_cpu_ms_per_token"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("%v:\n%s", err, stdout)
		}
		if res.Mode != "dpop-fresh-nonce" || res.Tokens == 0 || res.TokensPerS <= 0 || res.ErrorsTotal != 0 ||
			res.NonceRoundTrips != res.Tokens || res.GeneratorMS <= 0 {
			t.Fatalf("result %+v", res)
		}
		if !strings.Contains(stderr, "tillit bench token: 2 clients, 300ms warm-up and 600ms measured, against "+srv.URL) {
			t.Errorf("stderr %q", stderr)
		}
	})

	t.Run("no token issued", func(t *testing.T) {
		// A key the server does not know: every request is refused and
		// counted, and the command fails after printing the counts.
		out := filepath.Join(t.TempDir(), "result.json")
		code, stdout, stderr := runCLI(t, args("--key", writeTestKey(t), "--json-out", out)...)
		if code != 1 || !strings.Contains(stderr, "tillit bench: no token was issued\n") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		for _, want := range []string{"tokens       0 = 0.0 tokens/s\n", "  invalid_client ", "HTTP 401"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Errors []struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
				Count  int64  `json:"count"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(b, &res); err != nil || len(res.Errors) != 1 || res.Errors[0].Error != "invalid_client" ||
			res.Errors[0].Status != 401 || res.Errors[0].Count < 1 {
			t.Fatalf("--json-out: %v\n%s", err, b)
		}
	})
}
