package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/resource"
)

// countPath counts the exchanges to path, and how many of them had status.
func countPath(log []exchange, path string, status int) int {
	n := 0
	for _, x := range log {
		if x.Path == path && (status == 0 || x.Status == status) {
			n++
		}
	}
	return n
}

// TestE2ETokenSourceCache: a TokenSource asks the STS once while its token
// is good, again once the renewal margin is reached, and two sources for
// the same request share one token.
func TestE2ETokenSourceCache(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "deft-client", func(cfg *client.Config) { cfg.Scopes = []string{"nhn:deft/api"} })
	ctx := context.Background()
	ts, err := c.TokenSource(client.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.rec.take()
	again, err := c.TokenSource(client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*client.TokenSource{ts, again} {
		tok, err := s.Token(ctx)
		if err != nil || tok != first {
			t.Fatalf("cached token: %v, %v", tok, err)
		}
	}
	e.srv.Clock.Advance(time.Duration(first.ExpiresIn)*time.Second - 30*time.Second /* the default ExpiryMargin */ - time.Second)
	if tok, _ := ts.Token(ctx); tok != first {
		t.Fatal("renewed before the margin")
	}
	if log := e.rec.take(); len(log) != 0 {
		t.Fatalf("requests while the token was good: %v", log)
	}
	e.srv.Clock.Advance(time.Second)
	renewed, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || countPath(e.rec.take(), "/connect/token", http.StatusOK) != 1 {
		t.Fatal("the token was not renewed at the margin")
	}

	// Another organisation is another cache entry.
	other, err := c.TokenSource(client.TokenRequest{Organization: client.Organization{Child: "310900044"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := other.Token(ctx); err != nil || tok == renewed {
		t.Fatalf("another organisation got %v, %v", tok, err)
	}
}

// TestE2ETokenSourceNoStampede: many goroutines that need a token at once
// cause one token request (two with the nonce round trip), and all get
// its token.
func TestE2ETokenSourceNoStampede(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "deft-client", nil)
	ts, err := c.TokenSource(client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	toks := make([]*client.TokenResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("goroutines got different tokens")
		}
	}
	log := e.rec.take()
	if got := countPath(log, "/connect/token", 0); got != 2 {
		t.Fatalf("%d token requests, want 2 (use_dpop_nonce, then the token): %v", got, log)
	}
}

// TestE2ETokenSourceErrors: an error is typed and not cached.
func TestE2ETokenSourceErrors(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "deft-client", nil)
	ts, err := c.TokenSource(client.TokenRequest{Scopes: []string{"e-helse:sfm.api/sfm.api"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := ts.Token(context.Background())
		var oe *client.Error
		if !errors.As(err, &oe) || oe.Code != "invalid_scope" || oe.StatusCode != 400 {
			t.Fatalf("got %v", err)
		}
	}
	if got := countPath(e.rec.take(), "/connect/token", 0); got != 3 {
		t.Fatalf("%d token requests, want 3: the error was cached", got)
	}
	// A caller that has given up gets its own context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ts.Token(ctx); !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestE2EOAuth2Adapter(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "bearer-client", nil)
	ts, err := c.TokenSource(client.TokenRequest{Scopes: []string{"test:bearer/read"}, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.OAuth2(context.Background()).Token()
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := ts.Token(context.Background())
	if tok.AccessToken != cached.AccessToken || !strings.EqualFold(tok.TokenType, "Bearer") || !tok.Expiry.Equal(cached.Expiry) || tok.ExpiresIn != cached.ExpiresIn {
		t.Fatalf("oauth2 token %+v", tok)
	}
}

// api starts a real API on the resource package: DEFT, DPoP with nonces. It
// answers with the caller's client id and the body it read.
func (e *e2e) api(t *testing.T) *httptest.Server {
	t.Helper()
	v, err := resource.New(resource.Config{
		Issuer: e.srv.URL, Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"}, Now: e.srv.Clock.Now,
		Nonces: dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: []byte("the test API's nonce key, 32 B!!")}),
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]string{"client_id": c.ClientID, "body": string(body),
			"tenancy": c.Tenancy, "parent": c.Organization.Parent, "supplier": c.Organization.Supplier})
	})))
	t.Cleanup(api.Close)
	return api
}

// TestE2ETransport calls a real API through Transport: the STS asks for a
// nonce, then the API does; the next call needs one round trip; a POST body
// is sent again on the API's nonce retry; the caller's request is left as it
// was.
func TestE2ETransport(t *testing.T) {
	e := startE2E(t)
	api := e.api(t)
	c := e.client(t, "deft-client", nil)
	ts, err := c.TokenSource(client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &client.Transport{Source: ts, Base: e.rec}}

	get := func() map[string]string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, api.URL+"/whoami?x=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("API answered %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if req.Header.Get("Authorization") != "" || req.Header.Get("DPoP") != "" {
			t.Fatal("the caller's request was modified")
		}
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	if out := get(); out["client_id"] != "deft-client" {
		t.Fatalf("API saw %v", out)
	}
	log := e.rec.take()
	var got []string
	for _, x := range log {
		got = append(got, x.Method+" "+x.Path+" "+http.StatusText(x.Status))
	}
	want := []string{
		"GET /.well-known/openid-configuration OK",
		"POST /connect/token Bad Request", "POST /connect/token OK", // the STS's nonce
		"GET /whoami Unauthorized", "GET /whoami OK", // the API's nonce
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("exchanges:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	get()
	if log := e.rec.take(); len(log) != 1 || log[0].Status != 200 {
		t.Fatalf("second call: %v, want one request", log)
	}

	// A POST to an API whose nonce the client does not have yet: the body
	// goes again with the retry.
	fresh := e.client(t, "deft-client", nil)
	ts2, _ := fresh.TokenSource(client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	hc2 := &http.Client{Transport: &client.Transport{Source: ts2, Base: e.rec}}
	resp, err := hc2.Post(api.URL+"/files", "text/plain", bytes.NewReader([]byte("a file")))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out["body"] != "a file" {
		t.Fatalf("POST: %d %v", resp.StatusCode, out)
	}
	if n := countPath(e.rec.take(), "/files", 0); n != 2 {
		t.Fatalf("%d POSTs, want 2", n)
	}

	// A body that cannot be read twice is not retried: the 401 comes back.
	third := e.client(t, "deft-client", nil)
	ts3, _ := third.TokenSource(client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/files", io.NopCloser(strings.NewReader("once")))
	resp, err = (&http.Client{Transport: &client.Transport{Source: ts3}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("unreplayable body: %d", resp.StatusCode)
	}
}

// TestE2EMultiTenant: a multi-tenant client names the organisation it acts
// for, one TokenSource per organisation, and the API sees it as the parent
// with the client's supplier; an organisation that has not delegated to the
// supplier is refused by the STS.
func TestE2EMultiTenant(t *testing.T) {
	e := startE2E(t)
	api := e.api(t)
	c := e.client(t, "multi-client", func(cfg *client.Config) {
		cfg.Tenancy, cfg.Scopes = client.MultiTenant, []string{"nhn:deft/api"}
	})
	call := func(org string) (map[string]string, error) {
		ts, err := c.TokenSource(client.TokenRequest{Organization: client.Organization{Parent: org}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: &client.Transport{Source: ts}}).Get(api.URL + "/whoami")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		return out, nil
	}
	for _, org := range []string{servertest.Tenant, servertest.TenantAll} {
		out, err := call(org)
		if err != nil {
			t.Fatal(err)
		}
		if out["tenancy"] != "multi-tenant" || out["parent"] != org || out["supplier"] != servertest.Supplier {
			t.Fatalf("acting for %s, the API saw %v", org, out)
		}
	}
	_, err := call(servertest.Customer)
	var oe *client.Error
	if !errors.As(err, &oe) || oe.Code != "invalid_request" {
		t.Fatalf("an organisation without delegation: %v", err)
	}
	if _, err := c.TokenSource(client.TokenRequest{}); err == nil || err.Error() != "client: a multi-tenant client must name the organisation it acts for" {
		t.Fatalf("no organisation: %v", err)
	}
}
