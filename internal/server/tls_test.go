package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/tlstest"
)

// serveListeners runs ServeListeners on l and stops it when the test ends.
func serveListeners(t *testing.T, s *servertest.Server, l server.Listeners) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Srv.ServeListeners(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListeners: %v", err)
		}
	})
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// With tls set the server speaks HTTPS itself, and a certificate replaced
// in its files is served from the next check on, without a restart.
func TestTLSCertificateReload(t *testing.T) {
	certDir := t.TempDir()
	certFile, keyFile, first := tlstest.Write(t, certDir, 1)
	s := servertest.Start(t, servertest.Options{Settings: "tls: {cert_file: " + certFile + ", key_file: " + keyFile + "}"})
	ln := listen(t)
	serveListeners(t, s, server.Listeners{Main: ln})
	base := "https://" + ln.Addr().String()

	var roots = tlstest.Pool(first)
	serial := func(t *testing.T) int64 {
		t.Helper()
		// A new connection each time, so that each request is a handshake.
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
		resp, err := c.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("status %d, tls %+v", resp.StatusCode, resp.TLS)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(t); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	// The files are replaced; within the check interval the old
	// certificate is still served, after it the new one.
	_, _, second := tlstest.Write(t, certDir, 2)
	roots = tlstest.Pool(first, second)
	if got := serial(t); got != 1 {
		t.Fatalf("before the check interval: serial %d, want 1", got)
	}
	s.Clock.Advance(5 * time.Second)
	if got := serial(t); got != 2 {
		t.Fatalf("after the files changed: serial %d, want 2", got)
	}

	// A pair that does not load (the key written, the certificate not
	// yet) keeps the previous certificate.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nnot yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Clock.Advance(5 * time.Second)
	if got := serial(t); got != 2 {
		t.Fatalf("with a broken certificate file: serial %d, want 2", got)
	}

	// TLS 1.1 and older are refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
}

// With metrics.listen, /metrics is served there and nowhere else.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Settings: "metrics: {listen: 127.0.0.1:0}"})
	main, metrics := listen(t), listen(t)
	serveListeners(t, s, server.Listeners{Main: main, Metrics: metrics})

	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + metrics.Addr().String() + "/metrics"); code != 200 || !strings.Contains(body, "tillit_") {
		t.Errorf("metrics listener: %d\n%.200s", code, body)
	}
	for _, url := range []string{
		"http://" + main.Addr().String() + "/metrics",
		s.URL + "/metrics",
		"http://" + metrics.Addr().String() + "/.well-known/openid-configuration",
	} {
		if code, _ := get(url); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", url, code)
		}
	}
	if code, _ := get("http://" + main.Addr().String() + "/healthz"); code != 200 {
		t.Errorf("main listener /healthz: %d", code)
	}
}

// Without metrics.listen, /metrics stays on the main listener.
func TestMetricsOnTheMainListenerByDefault(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
}
