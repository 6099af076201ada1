package stalltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/token"
)

// requestTimeout is the request timeout the tests configure, and margin
// what a request may take beyond it: the bound is functional (the answer
// comes once the deadline has passed, not after a batch limit or a busy
// timeout), not a figure of speed.
const (
	requestTimeout = time.Second
	margin         = 1500 * time.Millisecond
)

const settings = "http:\n  request_timeout: 1s\n"

// answer is what an endpoint said, and how long it took.
type answer struct {
	Status      int
	RetryAfter  string
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Elapsed     time.Duration
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s (%s) Retry-After %q after %v", a.Status, a.Error, a.Description, a.RetryAfter, a.Elapsed.Round(time.Millisecond))
}

// harness makes requests to a test server on the server's fake clock.
type harness struct {
	sts  *servertest.Server
	http *http.Client
	dpop *dpop.Signer
}

func newHarness(t *testing.T, sts *servertest.Server) *harness {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	// A client's own timeout, far above what the server may take: the
	// test, not the client, judges the wait.
	return &harness{sts: sts, http: &http.Client{Timeout: time.Minute}, dpop: signer}
}

func (h *harness) assertion(t *testing.T, clientID string) string {
	t.Helper()
	c, err := client.New(client.Config{Issuer: h.sts.URL, ClientID: clientID, Key: h.sts.Key(t, clientID), Now: h.sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.ClientAssertion()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (h *harness) proof(t *testing.T, nonce string) string {
	t.Helper()
	p, err := h.dpop.Proof(http.MethodPost, h.sts.URL+token.Path, dpop.ProofOptions{Nonce: nonce, Now: h.sts.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// post sends form to path with the DPoP proof, if any, and reads the
// answer.
func (h *harness) post(t *testing.T, path string, form url.Values, proof string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.sts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	start := time.Now()
	resp, err := h.http.Do(req)
	if err != nil {
		return answer{Status: -1, Description: err.Error(), Elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Elapsed: time.Since(start)}
	if err != nil {
		a.Description = err.Error()
		return a
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &a); err != nil {
			a.Description = fmt.Sprintf("body %q: %v", body, err)
		}
	}
	return a
}

func assertionForm(assertion string, kv ...string) url.Values {
	f := url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// nonce gets a DPoP nonce the way a client does: a proof without one is
// answered use_dpop_nonce. Nonces are made from the clock, which the
// tests do not move, so one serves a whole test.
func (h *harness) nonce(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.sts.URL+token.Path, strings.NewReader(
		assertionForm(h.assertion(t, "deft-client"), "grant_type", "client_credentials", "scope", "nhn:deft/api").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", h.proof(t, ""))
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != http.StatusBadRequest || n == "" {
		t.Fatalf("nonce: %d, DPoP-Nonce %q", resp.StatusCode, n)
	}
	return n
}

// A call is one request the tests send while the database does not
// answer.
type call struct {
	name string
	send func(t *testing.T) answer
}

// calls are requests of every kind: tokens that reach the commit
// (client_credentials, refresh), a refusal that must be recorded,
// introspection and revocation.
func (h *harness) calls(t *testing.T, nonce string) []call {
	t.Helper()
	refresh := h.sts.RefreshToken(t, "refresh-client", h.dpop.Thumbprint(),
		token.RefreshGrant{Scopes: []string{"nhn:deft/api", "offline_access"}})
	return []call{
		{"client_credentials", func(t *testing.T) answer {
			return h.post(t, token.Path, assertionForm(h.assertion(t, "deft-client"),
				"grant_type", "client_credentials", "scope", "test:bearer/read"), "")
		}},
		{"refresh_token", func(t *testing.T) answer {
			return h.post(t, token.Path, assertionForm(h.assertion(t, "refresh-client"),
				"grant_type", "refresh_token", "refresh_token", refresh), h.proof(t, nonce))
		}},
		// Refused once the client is authenticated, so that the refusal
		// has an audit record of its own to write.
		{"refused (invalid_scope)", func(t *testing.T) answer {
			return h.post(t, token.Path, assertionForm(h.assertion(t, "deft-client"),
				"grant_type", "client_credentials", "scope", "no:such/scope"), "")
		}},
		{"introspection", func(t *testing.T) answer {
			return h.post(t, token.IntrospectionPath, assertionForm(h.assertion(t, "sfm-actor"), "token", "not-a-token"), "")
		}},
		{"revocation", func(t *testing.T) answer {
			return h.post(t, token.RevocationPath, assertionForm(h.assertion(t, "deft-client"), "token", token.NewRefreshTokenValue()), "")
		}},
	}
}

// sendAll sends every call at once and returns the answers in order.
func sendAll(t *testing.T, calls []call) []answer {
	t.Helper()
	out := make([]answer, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { out[i] = c.send(t) })
	}
	wg.Wait()
	return out
}

// checkUnavailable asserts that every answer is 503 temporarily_unavailable
// with a Retry-After, within the request timeout and the margin, and logs
// the timings seen.
func checkUnavailable(t *testing.T, calls []call, answers []answer) {
	t.Helper()
	for i, a := range answers {
		t.Logf("%s: %v", calls[i].name, a)
		if a.Status != http.StatusServiceUnavailable || a.Error != "temporarily_unavailable" || a.RetryAfter == "" {
			t.Errorf("%s: %v; want 503 temporarily_unavailable with Retry-After", calls[i].name, a)
		}
		if a.Elapsed > requestTimeout+margin {
			t.Errorf("%s: answered after %v; want within %v", calls[i].name, a.Elapsed, requestTimeout+margin)
		}
	}
}

// waitRecovered sends client_credentials requests until one is issued,
// for up to limit, and returns how long it took.
func (h *harness) waitRecovered(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		a := h.post(t, token.Path, assertionForm(h.assertion(t, "deft-client"),
			"grant_type", "client_credentials", "scope", "test:bearer/read"), "")
		if a.Status == http.StatusOK {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("not recovered after %v: %v", limit, a)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
