package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// TestConnect: token, call and bench token with --connect reach the
// token service at that address while every request still names the
// issuer, as when several instances stand behind one issuer URL. Here
// nothing answers at the issuer's own address any more, so a request that
// went there would fail.
func TestConnect(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{Clock: servertest.NewClock(time.Now())})
	instance := httptest.NewServer(srv.Srv.Handler())
	defer instance.Close()
	srv.HTTP.Close()
	addr := instance.Listener.Addr().String()
	key := filepath.Join(t.TempDir(), "deft.jwk")
	if err := keyfile.WritePrivate(key, srv.Key(t, "deft-client")); err != nil {
		t.Fatal(err)
	}
	client := []string{"--issuer", srv.URL, "--client-id", "deft-client", "--key", key, "--scope", "nhn:deft/api"}
	// The API is elsewhere: call's own request must not go to --connect.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		w.Write([]byte("api saw " + scheme + " " + r.Header.Get("DPoP")[:2]))
	}))
	defer api.Close()

	t.Run("token without --connect", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"token"}, client...)...)
		if code != 1 || !strings.Contains(stderr, "connection refused") {
			t.Fatalf("exit %d, stderr %q; want the issuer's address refused", code, stderr)
		}
	})
	t.Run("token", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, append([]string{"token", "--connect", addr, "--decode"}, client...)...)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if want := `"iss": "` + srv.URL + `"`; !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %s:\n%s", want, stdout)
		}
	})
	t.Run("call", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, append([]string{"call", "--connect", addr, api.URL + "/whoami"}, client...)...)
		if code != 0 || stdout != "api saw DPoP ey" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want the API to get a DPoP token and proof", code, stdout, stderr)
		}
	})
	t.Run("bench token", func(t *testing.T) {
		args := append([]string{"bench", "token", "--connect", addr, "-c", "1", "--duration", "100ms", "--warmup", "0s"}, client...)
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if want := "against " + srv.URL + ", connecting to " + addr + "\n"; !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
		if want := "endpoint     " + srv.URL + "/connect/token via " + addr + " (client deft-client)\n"; !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	})
}
