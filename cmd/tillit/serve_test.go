package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/config"
)

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDev runs 'tillit serve --dev' in-process on a free port and returns
// the issuer; the server stops when the test ends.
func startDev(t *testing.T, dir string) (issuer string, stdout *syncBuffer) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--data-dir", dir, "--listen", addr}, stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited with %d:\n%s", code, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	issuer = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return issuer, stdout
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The README's first command: serve --dev makes its data folder, prints the
// issuer and the next command, and that command gets a token.
func TestServeDevThenToken(t *testing.T) {
	dir := t.TempDir()
	issuer, out := startDev(t, dir)
	for _, f := range []string{"tillit.yaml", "tillit.db", "kek", "demo-deft.jwk", "demo-sfm.jwk"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("data folder lacks %s: %v", f, err)
		}
	}
	text := out.String()
	if !strings.Contains(text, "issuer:  "+issuer) {
		t.Fatalf("issuer not printed:\n%s", text)
	}
	// Take the printed command and run it.
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, " token ") && strings.Contains(l, "nhn:deft/api") {
			line = l
			break
		}
	}
	fields := strings.Fields(line)
	i := 0
	for i < len(fields) && fields[i] != "token" {
		i++
	}
	if i == len(fields) {
		t.Fatalf("no token command printed:\n%s", text)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), fields[i:], &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit %d: %s", fields[i:], code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"aud": "nhn:deft"`) || !strings.Contains(stdout.String(), `"jkt"`) {
		t.Fatalf("token output:\n%s", stdout.String())
	}
}

func TestKeysRotateAndList(t *testing.T) {
	dir := t.TempDir()
	startDev(t, dir)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate", "--dev", "--data-dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("rotate: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "is published and signs from") || strings.Count(stdout.String(), "\n2 ") != 1 {
		t.Fatalf("rotate output:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"keys", "list", "--dev", "--data-dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "active") || !strings.Contains(stdout.String(), "next") {
		t.Fatalf("list output:\n%s", stdout.String())
	}
	if code := run(context.Background(), []string{"keys", "rotate"}, &stdout, &stderr); code != 1 {
		t.Fatalf("rotate without --config or --dev: exit %d", code)
	}
}

func TestServeUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, &stdout, &stderr); code != 2 {
		t.Fatalf("serve without --dev or --config: exit %d", code)
	}
	if u := stderr.String(); !strings.Contains(u, "-listen") || strings.Contains(u, hiddenKeyMaintenance) || strings.Contains(u, hiddenLeaseTTL) {
		t.Errorf("usage shows a hidden flag or hides the others:\n%s", u)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("issuer: https://sts.example.com\nbogus: 1\n"), 0o600)
	stderr.Reset()
	if code := run(context.Background(), []string{"serve", "--config", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "bad.yaml:2") {
		t.Fatalf("unknown key: exit %d: %s", code, stderr.String())
	}
	// Outside --dev, serve refuses to start without a key-encryption key.
	good := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(good, []byte("issuer: https://sts.example.com\n"), 0o600)
	stderr.Reset()
	t.Setenv("TILLIT_KEY_ENCRYPTION_KEY", "")
	if code := run(context.Background(), []string{"serve", "--config", good}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "key-encryption key") {
		t.Fatalf("no KEK: exit %d: %s", code, stderr.String())
	}
}

func TestStorageNameHidesPasswords(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://tillit:s3cret@db:5432/tillit?sslmode=require&password=x", "postgres://tillit@db:5432/tillit"},
		{"data/tillit.db", "data/tillit.db"},
		{"sqlite:///var/lib/tillit.db", "sqlite:///var/lib/tillit.db"},
	} {
		if got := storageName(tt.in); got != tt.want || strings.Contains(got, "s3cret") {
			t.Errorf("storageName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A busy port is found before the store is touched, and the error says
// where the address came from.
func TestServeBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	t.Setenv("TILLIT_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	for _, tt := range []struct {
		name     string
		settings string
		args     []string
		wantErr  string
	}{
		{"from the file", "listen: " + addr + "\n", nil, "(listen in "},
		{"from the flag", "", []string{"--listen", addr}, "(given with --listen)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "tillit.yaml")
			os.WriteFile(cfg, []byte("issuer: https://sts.example.com\ndata_dir: state\n"+tt.settings), 0o600)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"serve", "--config", cfg}, tt.args...), &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), "cannot listen on "+addr+" "+tt.wantErr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant %q", code, stderr.String(), tt.wantErr)
			}
			// Nothing written: no data folder, so no database, registry or key.
			if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
				t.Errorf("the data folder was created before the port was found busy: %v", err)
			}
		})
	}
}

// Outside --dev, serve creates its data folder (0700) on the first start.
func TestServeCreatesDataFolder(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tillit.yaml")
	addr := freeAddr(t)
	os.WriteFile(cfg, []byte("issuer: http://"+addr+"\nlisten: "+addr+"\ndata_dir: var/state\n"), 0o600)
	t.Setenv("TILLIT_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &stdout, &stderr) }()
	waitReady(t, "http://"+addr, done, &stderr)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	fi, err := os.Stat(filepath.Join(dir, "var", "state"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "var", "state", "tillit.db")); err != nil {
		t.Error(err)
	}
}

// waitReady waits until the server at base answers /healthz, or fails the
// test when run returned first.
func waitReady(t *testing.T, base string, done <-chan int, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keys list reads public records only: it works without the
// key-encryption key that rotate needs, and says which key never signed.
func TestKeysListWithoutKEK(t *testing.T) {
	dir := t.TempDir()
	startDev(t, dir)
	for _, args := range [][]string{{"keys", "rotate"}, {"keys", "rotate", "--now"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(args, "--dev", "--data-dir", dir), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Running servers load it within registry_poll (default 2s).") {
			t.Errorf("%v output:\n%s", args, stdout.String())
		}
	}
	cfg := filepath.Join(t.TempDir(), "nokek.yaml")
	os.WriteFile(cfg, []byte("issuer: https://sts.example.org\nstorage: "+filepath.Join(dir, "tillit.db")+"\n"), 0o600)
	t.Setenv("TILLIT_KEY_ENCRYPTION_KEY", "")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keys", "list", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("keys list without a key-encryption key: exit %d: %s", code, stderr.String())
	}
	var gen2 string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "2 ") {
			gen2 = l
		}
	}
	// Generation 2 waited for its publication lead when --now made 3.
	if !strings.Contains(gen2, "expired") || !strings.Contains(gen2, "never signed") || !strings.Contains(stdout.String(), "active") {
		t.Fatalf("keys list:\n%s", stdout.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"keys", "rotate", "--config", cfg}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "key-encryption key") {
		t.Fatalf("keys rotate without a key-encryption key: exit %d: %s", code, stderr.String())
	}
}

func TestLogDurationsAsText(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		cfg := config.Default()
		cfg.Log.Format = format
		var buf bytes.Buffer
		newLogger(cfg, &buf).Info("shutting down", "timeout", 10*time.Second, slog.Group("g", "d", 1500*time.Microsecond))
		want := map[string][]string{"json": {`"timeout":"10s"`, `"d":"1.5ms"`}, "text": {"timeout=10s", "g.d=1.5ms"}}[format]
		for _, w := range want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s log %q lacks %s", format, buf.String(), w)
			}
		}
	}
}
