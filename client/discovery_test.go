package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// docServer serves one discovery document at the well-known path and
// nothing else. It is not a token service: the tests below check only how
// the client reads and caches a document. The document is HelseID's
// production discovery document (profile §1.3) with the test server's URL
// as issuer.
type docServer struct {
	*httptest.Server
	hits atomic.Int32

	mu     sync.Mutex
	status int
	body   string
}

func newDocServer(t *testing.T) *docServer {
	t.Helper()
	s := &docServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != wellKnownPath {
			http.NotFound(w, r)
			return
		}
		s.hits.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	s.set(http.StatusOK, helseIDDocument(t, s.URL))
	return s
}

func (s *docServer) set(status int, body string) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func helseIDDocument(t *testing.T, issuer string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/helseid-discovery.json")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "{{issuer}}", issuer)
}

func TestMetadataHelseIDDocument(t *testing.T) {
	s := newDocServer(t)
	c := newTestClient(t, Config{Issuer: s.URL})
	m, err := c.Metadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.Issuer != s.URL || m.TokenEndpoint != s.URL+"/connect/token" ||
		m.JWKSURI != s.URL+"/.well-known/openid-configuration/jwks" ||
		m.PushedAuthorizationRequestEndpoint != s.URL+"/connect/par" {
		t.Fatalf("endpoints %+v", m)
	}
	if len(m.DPoPSigningAlgValuesSupported) != 9 || len(m.GrantTypesSupported) != 7 {
		t.Fatalf("dpop algs %v grant types %v", m.DPoPSigningAlgValuesSupported, m.GrantTypesSupported)
	}
	if !strings.Contains(string(m.Raw), `"available_idps"`) {
		t.Fatal("Raw does not hold the whole document")
	}
}

func TestMetadataCache(t *testing.T) {
	s := newDocServer(t)
	now := testNow
	var mu sync.Mutex
	c := newTestClient(t, Config{Issuer: s.URL, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	get := func() {
		t.Helper()
		if _, err := c.Metadata(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	get()
	get()
	advance(defaultMetadataMaxAge - time.Second)
	get()
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d reads within a day, want 1", n)
	}
	advance(time.Second)
	get()
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("%d reads after a day, want 2", n)
	}

	// A copy is returned: a caller cannot change what others see.
	m, _ := c.Metadata(context.Background())
	m.TokenEndpoint = "https://attacker.example/token"
	m2, _ := c.Metadata(context.Background())
	if m2.TokenEndpoint != s.URL+"/connect/token" {
		t.Fatal("the cached document was changed through a returned copy")
	}
}

func TestMetadataFailureIsNotCached(t *testing.T) {
	s := newDocServer(t)
	good := helseIDDocument(t, s.URL)
	s.set(http.StatusServiceUnavailable, "down")
	c := newTestClient(t, Config{Issuer: s.URL})
	if _, err := c.Metadata(context.Background()); err == nil {
		t.Fatal("no error from a 503")
	}
	s.set(http.StatusOK, good)
	if _, err := c.Metadata(context.Background()); err != nil {
		t.Fatalf("after the server recovered: %v", err)
	}
}

func TestMetadataErrors(t *testing.T) {
	s := newDocServer(t)
	doc := helseIDDocument(t, s.URL)
	tests := []struct {
		name   string
		issuer string // configured; empty means the server's URL
		status int
		body   string
		// wantErr is the error text, or its start when it ends in ": "
		// (what follows is encoding/json's wording); {{issuer}} is the
		// server's URL.
		wantErr string
	}{
		{
			name:    "document names another issuer",
			body:    helseIDDocument(t, "https://helseid-sts.nhn.no"),
			wantErr: `client: discovery: document names issuer "https://helseid-sts.nhn.no", not "{{issuer}}"`,
		},
		{
			name:    "configured issuer has a trailing slash the document does not",
			issuer:  "{{issuer}}/",
			body:    doc,
			wantErr: `client: discovery: document names issuer "{{issuer}}", not "{{issuer}}/"`,
		},
		{
			name:    "not found",
			status:  http.StatusNotFound,
			body:    "{}",
			wantErr: "client: discovery: {{issuer}}/.well-known/openid-configuration answered HTTP 404",
		},
		{
			name:    "not JSON",
			body:    "<html></html>",
			wantErr: "client: discovery: document is not valid JSON: ",
		},
		{
			name:    "too large",
			body:    `{"issuer":"{{issuer}}","x":"` + strings.Repeat("a", maxMetadataSize) + `"}`,
			wantErr: "client: discovery: response is larger than 524288 bytes",
		},
		{
			name:    "no token endpoint",
			body:    `{"issuer":"{{issuer}}"}`,
			wantErr: "client: discovery: document has no token_endpoint",
		},
		{
			name:    "token endpoint in clear text to another host",
			body:    `{"issuer":"{{issuer}}","token_endpoint":"http://sts.example/connect/token"}`,
			wantErr: `client: discovery: token_endpoint "http://sts.example/connect/token": plain http is allowed only to a loopback address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fill := func(s2 string) string { return strings.ReplaceAll(s2, "{{issuer}}", s.URL) }
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			s.set(status, fill(tt.body))
			issuer := s.URL
			if tt.issuer != "" {
				issuer = fill(tt.issuer)
			}
			c := newTestClient(t, Config{Issuer: issuer})
			_, err := c.Metadata(context.Background())
			want := fill(tt.wantErr)
			if err == nil || err.Error() != want && !(strings.HasSuffix(want, ": ") && strings.HasPrefix(err.Error(), want)) {
				t.Fatalf("err = %v, want %q", err, fill(tt.wantErr))
			}
		})
	}
}
