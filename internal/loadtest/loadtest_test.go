package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// run starts nothing itself: it drives srv for a short window. The server's
// clock is fake and fixed, so assertion and proof times come from it.
func run(t *testing.T, srv *servertest.Server, cfg Config) *Result {
	t.Helper()
	cfg.Issuer = srv.URL
	cfg.Now = srv.Clock.Now
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if cfg.Duration == 0 {
		cfg.Duration = 300 * time.Millisecond
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// TestRun drives one real Tillit (internal/servertest) in every mode. The
// runs are short: they check what is counted, not how fast it is.
func TestRun(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	deft := srv.Key(t, "deft-client")
	deftScope := []string{"nhn:deft/api"}

	t.Run("DPoP keeps the nonce", func(t *testing.T) {
		res := run(t, srv, Config{
			ClientID:  "deft-client",
			Key:       deft,
			Scopes:    deftScope,
			ServerPID: os.Getpid(), // the server runs in this process
		})
		if len(res.Errors) > 0 || res.Tokens == 0 {
			t.Fatalf("tokens %d, errors %+v", res.Tokens, res.Errors)
		}
		// Without warm-up the first request of each client has no
		// nonce; after that the nonce the server handed out is reused.
		if res.NonceRoundTrips < 1 || res.NonceRoundTrips > int64(res.Concurrency) {
			t.Errorf("nonce round trips %d, want 1 to %d", res.NonceRoundTrips, res.Concurrency)
		}
		if res.Requests != res.Tokens+res.NonceRoundTrips {
			t.Errorf("requests %d, want tokens %d + round trips %d", res.Requests, res.Tokens, res.NonceRoundTrips)
		}
		if res.Connections != int64(res.Concurrency) || len(res.Warnings) > 0 {
			t.Errorf("%d connections for %d clients, warnings %q", res.Connections, res.Concurrency, res.Warnings)
		}
		l := res.Latency
		if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("latency %+v is not ordered", l)
		}
		if res.Generator == nil || res.Server == nil || res.Machine == nil {
			t.Fatalf("CPU not measured: generator %v, server %v, machine %v, warnings %q", res.Generator, res.Server, res.Machine, res.Warnings)
		}
		if res.Server.Time <= 0 || res.Server.PerToken <= 0 || res.Server.BusiestThread <= 0 || res.Server.BusiestThread > res.Server.Cores || res.Machine.Cores < 1 {
			t.Errorf("server CPU %+v, machine %+v", *res.Server, *res.Machine)
		}
		if res.Endpoint != srv.URL+"/connect/token" || res.Mode() != "dpop" {
			t.Errorf("endpoint %q, mode %q", res.Endpoint, res.Mode())
		}
	})

	t.Run("fresh nonce for every token", func(t *testing.T) {
		res := run(t, srv, Config{ClientID: "deft-client", Key: deft, Scopes: deftScope, FreshNonce: true, Duration: 600 * time.Millisecond})
		if len(res.Errors) > 0 || res.Tokens == 0 {
			t.Fatalf("tokens %d, errors %+v", res.Tokens, res.Errors)
		}
		if res.NonceRoundTrips != res.Tokens || res.Requests != 2*res.Tokens {
			t.Errorf("tokens %d, round trips %d, requests %d: want a round trip for every token", res.Tokens, res.NonceRoundTrips, res.Requests)
		}
	})

	// The nonce round trips of the first requests happen in the warm-up
	// and are not counted. The warm-up is long enough for the first
	// requests to finish on a busy CI machine under the race detector,
	// where a durable commit alone can take tens of milliseconds.
	t.Run("warm-up not counted", func(t *testing.T) {
		res := run(t, srv, Config{ClientID: "deft-client", Key: deft, Scopes: deftScope, Warmup: time.Second, Duration: 600 * time.Millisecond})
		if len(res.Errors) > 0 || res.Tokens == 0 || res.NonceRoundTrips != 0 {
			t.Fatalf("tokens %d, round trips %d, errors %+v", res.Tokens, res.NonceRoundTrips, res.Errors)
		}
		if res.Duration != 600*time.Millisecond || res.Warmup != time.Second {
			t.Errorf("window %v after %v, want 150ms after 1s", res.Duration, res.Warmup)
		}
	})

	// Paced, the clients start no more tokens than the rate allows, where
	// unpaced they get as many as the server answers (hundreds here).
	t.Run("paced", func(t *testing.T) {
		const rate, window = 40.0, time.Second
		res := run(t, srv, Config{ClientID: "deft-client", Key: deft, Scopes: deftScope, Rate: rate, Warmup: 200 * time.Millisecond, Duration: window})
		if len(res.Errors) > 0 || res.Tokens == 0 {
			t.Fatalf("tokens %d, errors %+v", res.Tokens, res.Errors)
		}
		// At most one token per interval per client, plus the one each
		// client may have in flight across the window's start.
		if most := int64(rate*window.Seconds()) + int64(res.Concurrency); res.Tokens > most {
			t.Errorf("%d tokens in %v paced at %v/s, want at most %d", res.Tokens, window, rate, most)
		}
		var text bytes.Buffer
		if err := res.WriteText(&text); err != nil || !strings.Contains(text.String(), "paced at 40 tokens/s") {
			t.Errorf("text does not say the pace: %v\n%s", err, text.String())
		}
	})

	t.Run("Bearer", func(t *testing.T) {
		res := run(t, srv, Config{ClientID: "deft-client", Key: deft, Scopes: []string{"test:bearer/read"}, Bearer: true, Duration: 600 * time.Millisecond})
		if len(res.Errors) > 0 || res.Tokens == 0 || res.NonceRoundTrips != 0 || res.Mode() != "bearer" {
			t.Fatalf("tokens %d, round trips %d, mode %s, errors %+v", res.Tokens, res.NonceRoundTrips, res.Mode(), res.Errors)
		}
	})

	stranger, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	failures := []struct {
		name       string
		cfg        Config
		wantError  string
		wantStatus int
	}{
		{
			name:      "key the server does not know",
			cfg:       Config{ClientID: "deft-client", Key: stranger, Scopes: deftScope},
			wantError: "invalid_client", wantStatus: 401,
		},
		{
			name:      "Bearer for an API that requires DPoP",
			cfg:       Config{ClientID: "deft-client", Key: deft, Scopes: deftScope, Bearer: true},
			wantError: "invalid_dpop_proof", wantStatus: 400,
		},
		{
			name:      "scope the client may not have",
			cfg:       Config{ClientID: "deft-client", Key: deft, Scopes: []string{"e-helse:sfm.api/sfm.api"}},
			wantError: "invalid_scope", wantStatus: 400,
		},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Concurrency, tt.cfg.Duration = 2, 600*time.Millisecond
			res := run(t, srv, tt.cfg)
			if res.Tokens != 0 || len(res.Errors) != 1 {
				t.Fatalf("tokens %d, errors %+v", res.Tokens, res.Errors)
			}
			e := res.Errors[0]
			if e.Error != tt.wantError || e.Status != tt.wantStatus || e.Count < 1 || e.Count != res.ErrorTotal() {
				t.Fatalf("errors %+v, want %s with HTTP %d", res.Errors, tt.wantError, tt.wantStatus)
			}
			if res.Latency != (Latency{}) {
				t.Errorf("latency %+v without tokens", res.Latency)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "tokens failed") {
				t.Errorf("warnings %q", res.Warnings)
			}
		})
	}

	t.Run("server pid that does not exist", func(t *testing.T) {
		// PIDs above the kernel's pid_max (at most 2^22) never exist.
		_, err := Run(context.Background(), Config{
			Issuer: srv.URL, Now: srv.Clock.Now, ClientID: "deft-client", Key: deft, ServerPID: 1 << 30,
		})
		if err == nil || !strings.Contains(err.Error(), "loadtest: server pid 1073741824: open /proc/1073741824/stat") {
			t.Fatalf("Run: %v", err)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Run(ctx, Config{
			Issuer: srv.URL, Now: srv.Clock.Now, ClientID: "deft-client", Key: deft, Concurrency: 2, Duration: time.Minute,
		})
		if err == nil || !strings.Contains(err.Error(), "loadtest: context deadline exceeded") {
			t.Fatalf("Run: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Run took %v to stop", d)
		}
	})
}

func TestRunConfig(t *testing.T) {
	key, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	valid := Config{Issuer: "http://127.0.0.1:1", ClientID: "c", Key: key}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "no issuer", change: func(c *Config) { c.Issuer = "" }, wantErr: "loadtest: no issuer"},
		{name: "no client", change: func(c *Config) { c.ClientID = "" }, wantErr: "loadtest: no client ID"},
		{name: "no key", change: func(c *Config) { c.Key = nil }, wantErr: "loadtest: no key"},
		{name: "negative concurrency", change: func(c *Config) { c.Concurrency = -1 }, wantErr: "loadtest: concurrency -1 is not between 1 and 10000"},
		{name: "huge concurrency", change: func(c *Config) { c.Concurrency = 10001 }, wantErr: "loadtest: concurrency 10001 is not between 1 and 10000"},
		{name: "negative duration", change: func(c *Config) { c.Duration = -time.Second }, wantErr: "loadtest: negative duration"},
		{name: "negative warm-up", change: func(c *Config) { c.Warmup = -time.Second }, wantErr: "loadtest: negative warm-up"},
		{name: "negative rate", change: func(c *Config) { c.Rate = -1 }, wantErr: "loadtest: rate -1 is not a positive number of tokens per second"},
		{name: "rate NaN", change: func(c *Config) { c.Rate = math.NaN() }, wantErr: "loadtest: rate NaN is not a positive number of tokens per second"},
		{name: "negative pid", change: func(c *Config) { c.ServerPID = -2 }, wantErr: "loadtest: server pid -2 is negative"},
		{name: "fresh nonce with Bearer", change: func(c *Config) { c.Bearer, c.FreshNonce = true, true }, wantErr: "loadtest: FreshNonce needs DPoP"},
		{name: "scope with a space", change: func(c *Config) { c.Scopes = []string{"a b"} }, wantErr: `loadtest: scope "a b" is empty or has white space`},
		{name: "plain http to another host", change: func(c *Config) { c.Issuer = "http://sts.invalid" }, wantErr: "loadtest: client: issuer \"http://sts.invalid\": plain http is allowed only to a loopback address"},
		{name: "public key", change: func(c *Config) { c.Key = keyfile.Public(key) }, wantErr: "loadtest: client: key: keyfile: not a private RSA or EC key"},
		// Port 1 on loopback refuses: discovery fails before any load.
		{name: "nothing listening", change: func(*Config) {}, wantErr: "loadtest: client: the issuer could not be reached: discovery:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			res, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run: %v, want %q", err, tt.wantErr)
			}
			if res != nil {
				t.Fatalf("result %+v with an error", res)
			}
		})
	}
}

func TestResultOutput(t *testing.T) {
	other := 0.82
	res := &Result{
		Endpoint: "http://127.0.0.1:8080/connect/token", ClientID: "c1", Concurrency: 32,
		Duration: 2 * time.Second, Warmup: time.Second,
		Tokens: 3000, Requests: 3010, NonceRoundTrips: 10,
		Errors:      []ErrorCount{{Error: "invalid_client", Status: 401, Count: 5, Example: "unknown client"}},
		Latency:     Latency{P50: 10 * time.Millisecond, P90: 12 * time.Millisecond, P99: 20 * time.Millisecond, Max: 31 * time.Millisecond, Mean: 11 * time.Millisecond},
		Connections: 33, GOMAXPROCS: 2,
		Generator: &CPUUse{Time: 450 * time.Millisecond, PerToken: 150 * time.Microsecond, Cores: 0.225},
		ServerPID: 42, Server: &CPUUse{Time: 1800 * time.Millisecond, PerToken: 600 * time.Microsecond, Cores: 0.9, BusiestThread: 0.5},
		Machine: &MachineUse{Cores: 2, BusyPercent: 97.25, StealPercent: 0.5, IOWaitPercent: 1.25, BusyCores: 1.945, OtherCores: &other},
	}
	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tokens       3000 = 1500.0 tokens/s\n",
		"latency      p50 10.000 ms  p90 12.000 ms  p99 20.000 ms  max 31.000 ms  (mean 11.000 ms)\n",
		"requests     3010, nonce round trips 10\n",
		"  invalid_client               HTTP 401         5  unknown client\n",
		"generator    CPU 0.150 ms/token, 0.23 cores (GOMAXPROCS 2)\n",
		"server       CPU 0.600 ms/token, 0.90 cores, busiest thread 0.50 (pid 42)\n",
		"machine      97.2% busy of 2 cores (1.95 cores), iowait 1.2%, steal 0.5%; other processes 0.82 cores\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"mode": "dpop", "tokens_per_s": 1500.0, "errors_total": 5.0, "nonce_round_trips": 10.0,
		"server_cpu_ms_per_token": 0.6, "generator_cpu_ms_per_token": 0.15, "machine_busy_percent": 97.25,
		"other_processes_cores": 0.82, "server_busiest_thread_cores": 0.5,
	} {
		if got[k] != want {
			t.Errorf("JSON %s = %v, want %v", k, got[k], want)
		}
	}
	if p50 := got["latency_ms"].(map[string]any)["p50"]; p50 != 10.0 {
		t.Errorf("JSON latency_ms.p50 = %v", p50)
	}
}

func TestLatencyOf(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{name: "none", in: nil, want: Latency{}},
		{name: "one", in: ms(7), want: Latency{P50: 7e6, P90: 7e6, P99: 7e6, Max: 7e6, Mean: 7e6}},
		{name: "unsorted ten", in: ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), want: Latency{P50: 5e6, P90: 9e6, P99: 10e6, Max: 10e6, Mean: 5500e3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latencyOf(tt.in); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTokenTypeOf(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		want   string
		wantOK bool
	}{
		{name: "compact", body: `{"access_token":"eyJ.x.y","token_type":"DPoP","expires_in":300}`, want: "DPoP", wantOK: true},
		{name: "compact, type first", body: `{"token_type":"Bearer","access_token":"eyJ.x.y"}`, want: "Bearer", wantOK: true},
		{name: "with spaces", body: "{\n  \"access_token\": \"eyJ.x.y\",\n  \"token_type\": \"DPoP\"\n}", want: "DPoP", wantOK: true},
		{name: "escaped type", body: `{"access_token":"eyJ.x.y","token_type":"D\u0050oP"}`, want: "DPoP", wantOK: true},
		{name: "no type", body: `{"access_token":"eyJ.x.y"}`, want: "", wantOK: true},
		{name: "empty token", body: `{"access_token":"","token_type":"DPoP"}`, wantOK: false},
		{name: "no token", body: `{"token_type":"DPoP"}`, wantOK: false},
		{name: "not JSON", body: `<html>`, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tokenTypeOf([]byte(tt.body))
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("got %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
