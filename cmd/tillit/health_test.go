package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	issuer, _ := startDev(t, t.TempDir())
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "ready", args: []string{"--url", issuer + "/readyz"}, wantCode: 0, wantStdout: issuer + "/readyz: ready\n"},
		{name: "not a readiness URL", args: []string{"--url", issuer + "/nope"}, wantCode: 1, wantStderr: "not ready: 404"},
		{name: "nobody listening", args: []string{"--url", "http://" + freeAddr(t) + "/readyz"}, wantCode: 1, wantStderr: "connection refused"},
		{name: "both --config and --url", args: []string{"--config", "x.yaml", "--url", issuer}, wantCode: 2, wantStderr: "--config and --url exclude each other"},
		{name: "an argument", args: []string{"now"}, wantCode: 2, wantStderr: `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"health"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) || (tt.wantStdout != "" && stdout.String() != tt.wantStdout) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}

	// From the configuration: its listen address.
	cfg := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(cfg, []byte("issuer: https://sts.example.org\nlisten: "+strings.TrimPrefix(issuer, "http://")+"\n"), 0o600)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"health", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("--config: exit %d: %s", code, stderr.String())
	}
}

func TestReadyURL(t *testing.T) {
	for _, tt := range []struct {
		listen string
		tls    bool
		want   string
	}{
		{"127.0.0.1:8080", false, "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:8443", true, "https://127.0.0.1:8443/readyz"},
		{":9000", false, "http://127.0.0.1:9000/readyz"},
		{"[::]:443", true, "https://[::1]:443/readyz"},
		{"sts.example.org:443", true, "https://sts.example.org:443/readyz"},
	} {
		if got := readyURL(tt.listen, tt.tls); got != tt.want {
			t.Errorf("readyURL(%q, %v) = %q, want %q", tt.listen, tt.tls, got, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "tillit ") || !strings.HasPrefix(lines[1], "commit ") || lines[2] != runtime.Version() {
		t.Fatalf("version output:\n%s", stdout.String())
	}

	// A release build's stamps win over the build info.
	version, commit = "v1.2.3", "0123abc"
	t.Cleanup(func() { version, commit = "", "" })
	if b := readBuildInfo(); b.Version != "v1.2.3" || b.Commit != "0123abc" || b.GoVersion != runtime.Version() {
		t.Fatalf("stamped build info %+v", b)
	}
}
