package resource_test

// The tests run against the real token service (internal/servertest: the
// real server wiring, SQLite, real keys; only the clock is fake). Tokens
// come from it through the client library; forged tokens are signed with
// its real signing key. The import of internal/ is in test code only: the
// package itself stays free of it (deps_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
	"github.com/tillit-sts/tillit/resource"
)

const apiURL = "https://api.example.no/files"

// counter passes requests to the real transport and counts them by path:
// it observes, it answers nothing itself.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[req.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (c *counter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

const jwksPath = "/.well-known/openid-configuration/jwks"

type harness struct {
	sts     *servertest.Server
	client  *client.Client
	dpopKey *jose.JSONWebKey
	proofs  *dpop.Signer
	fetches *counter
}

// Generating keys is slow for RSA; the DPoP key is made once.
var (
	dpopKeyOnce sync.Once
	sharedDPoP  *jose.JSONWebKey
)

func newHarness(t testing.TB) *harness {
	t.Helper()
	dpopKeyOnce.Do(func() {
		k, err := keyfile.Generate(jose.ES256, 0)
		if err != nil {
			panic(err)
		}
		sharedDPoP = k
	})
	h := &harness{sts: servertest.Start(t, servertest.Options{}), dpopKey: sharedDPoP, fetches: &counter{}}
	c, err := client.New(client.Config{
		Issuer: h.sts.URL, ClientID: "deft-client", Key: h.sts.Key(t, "deft-client"),
		DPoPKey: h.dpopKey, Now: h.sts.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	signer, err := keyfile.Signer(h.dpopKey)
	if err != nil {
		t.Fatal(err)
	}
	if h.proofs, err = dpop.NewSigner(signer, jose.ES256); err != nil {
		t.Fatal(err)
	}
	return h
}

// validator makes a validator for DEFT on the STS's clock, reading keys
// through the counter.
func (h *harness) validator(t testing.TB, mod func(*resource.Config)) *resource.Validator {
	t.Helper()
	cfg := resource.Config{
		Issuer: h.sts.URL, Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"},
		Now: h.sts.Clock.Now, HTTPClient: &http.Client{Transport: h.fetches},
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := resource.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// token gets a real DPoP-bound token for DEFT.
func (h *harness) token(t testing.TB, r client.TokenRequest) string {
	t.Helper()
	if r.Scopes == nil {
		r.Scopes = []string{"nhn:deft/api"}
	}
	tok, err := h.client.Token(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// claimsOf reads a token's payload without verifying it.
func claimsOf(t testing.TB, token string) map[string]any { return jwttest.Claims(t, token) }

// resign signs claims with the STS's current signing key: a token the STS
// could have issued, with whatever claims the test wants.
func (h *harness) resign(t testing.TB, claims map[string]any) string {
	t.Helper()
	s, err := h.sts.Srv.Keys().Signer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// proof makes a proof for a call to target with token.
func (h *harness) proof(t testing.TB, method, target, token string, now time.Time) string {
	t.Helper()
	p, err := h.proofs.Proof(method, target, dpop.ProofOptions{AccessToken: token, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// call runs one request through the middleware in-process and returns the
// response and, on success, the claims the handler saw.
func call(v *resource.Validator, r *http.Request) (*http.Response, *resource.Claims) {
	var seen *resource.Claims
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = resource.ClaimsFromContext(r.Context())
		io.WriteString(w, "ok")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Result(), seen
}

func newRequest(method, target, auth string, proofs ...string) *http.Request {
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader([]byte("{}"))
	}
	r := httptest.NewRequest(method, target, body)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}
