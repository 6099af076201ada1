package loadtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestConnKeepAlive checks the generator's HTTP/1.1 client against a real
// Tillit whose connections go away: closed while idle, and closed after
// every answer.
func TestConnKeepAlive(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	r, err := newRunner(ctx, Config{
		Issuer: srv.URL, Now: srv.Clock.Now, ClientID: "deft-client", Key: srv.Key(t, "deft-client"),
		Scopes: []string{"nhn:deft/api"}, Concurrency: 1, Duration: time.Second, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{r: r, conn: conn{t: r.target}, errors: map[errorKey]*ErrorCount{}}
	defer w.conn.close()
	token := func() {
		t.Helper()
		if _, _, f := w.token(ctx); f != nil {
			t.Fatalf("token: %+v", *f)
		}
	}

	token()
	token()
	if n := r.dials.Load(); n != 1 {
		t.Fatalf("%d connections for two tokens, want 1", n)
	}

	// A server may close an idle connection at any time; the request
	// that finds it closed goes again on a new one, without an error.
	srv.HTTP.CloseClientConnections()
	token()
	if n := r.dials.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}

	// Connection: close after every answer.
	srv.HTTP.Config.SetKeepAlivesEnabled(false)
	defer srv.HTTP.Config.SetKeepAlivesEnabled(true)
	token()
	token()
	if n := r.dials.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

func TestConnRefused(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	r, err := newRunner(ctx, Config{
		Issuer: srv.URL, Now: srv.Clock.Now, ClientID: "deft-client", Key: srv.Key(t, "deft-client"),
		Concurrency: 1, Duration: time.Second, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.HTTP.Close()
	w := &worker{r: r, conn: conn{t: r.target}, errors: map[errorKey]*ErrorCount{}}
	_, _, f := w.token(ctx)
	if f == nil || f.code != LabelTransport || !strings.Contains(f.detail, "connection refused") {
		t.Fatalf("failure %+v, want a refused connection", f)
	}
}

func TestNewTarget(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		wantAddr string
		wantHead string
		wantErr  string
	}{
		{name: "http with port", endpoint: "http://127.0.0.1:9402/connect/token", wantAddr: "127.0.0.1:9402",
			wantHead: "POST /connect/token HTTP/1.1\r\nHost: 127.0.0.1:9402\r\n"},
		{name: "https default port", endpoint: "https://sts.example.org/connect/token?x=1", wantAddr: "sts.example.org:443",
			wantHead: "POST /connect/token?x=1 HTTP/1.1\r\nHost: sts.example.org\r\n"},
		{name: "http default port, IPv6", endpoint: "http://[::1]/token", wantAddr: "[::1]:80",
			wantHead: "POST /token HTTP/1.1\r\nHost: [::1]\r\n"},
		{name: "not http", endpoint: "ftp://sts.example.org/token", wantErr: `loadtest: token endpoint "ftp://sts.example.org/token" is not http or https`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := newTarget(tt.endpoint, time.Second, nil)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.addr != tt.wantAddr || !strings.HasPrefix(string(tg.requestHead), tt.wantHead) || !strings.HasSuffix(string(tg.requestHead), "Content-Length: ") {
				t.Fatalf("addr %q, head %q", tg.addr, tg.requestHead)
			}
		})
	}
}
