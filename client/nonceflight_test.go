package client_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/resource"
)

// statusCounter counts an API's answers by status.
type statusCounter struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statusCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: 200}
		next.ServeHTTP(sw, r)
		s.mu.Lock()
		s.n[sw.code]++
		s.mu.Unlock()
	})
}

func (s *statusCounter) get(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[code]
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// TestTransportFirstNonceShared: 100 goroutines make their first calls to a
// nonce-requiring API at once. One of them fetches the API's nonce; the
// others wait for it instead of each making its own use_dpop_nonce round
// trip. The API counts the round trips.
func TestTransportFirstNonceShared(t *testing.T) {
	e := startE2E(t)
	v, err := resource.New(resource.Config{
		Issuer: e.srv.URL, Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"}, Now: e.srv.Clock.Now,
		Nonces: resource.NewNonces(),
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := &statusCounter{n: map[int]int{}}
	api := httptest.NewServer(counts.wrap(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))))
	defer api.Close()

	c := e.client(t, "deft-client", nil)
	ts, err := c.TokenSource(client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(t.Context()); err != nil { // the STS's round trips are not what is counted
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &client.Transport{Source: ts}}
	const n = 100
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := hc.Get(api.URL + "/whoami")
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d calls failed", f)
	}
	// One round trip for the first nonce; a slot boundary crossed during
	// the test could cost one more.
	if got := counts.get(http.StatusUnauthorized); got > 2 {
		t.Fatalf("%d use_dpop_nonce round trips for %d first calls, want at most 2", got, n)
	}
	if got := counts.get(http.StatusOK); got != n {
		t.Fatalf("%d successful calls, want %d", got, n)
	}
}
