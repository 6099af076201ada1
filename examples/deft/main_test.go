package main

// The whole path with real servers: the real STS (internal/servertest), this
// API on httptest, and the client library in between. Only the clock is
// fake, and STS and API share it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// trace passes requests to the real transport and notes "METHOD path
// status" of each.
type trace struct {
	mu  sync.Mutex
	log []string
}

func (t *trace) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		t.mu.Lock()
		t.log = append(t.log, fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, resp.StatusCode))
		t.mu.Unlock()
	}
	return resp, err
}

func (t *trace) take() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.log, "\n")
	t.log = nil
	return s
}

func TestEndToEnd(t *testing.T) {
	sts := servertest.Start(t, servertest.Options{})
	handler, _, err := newAPI(sts.URL, "", sts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(handler)
	defer api.Close()

	tr := &trace{}
	c, err := client.New(client.Config{
		Issuer: sts.URL, ClientID: "deft-client", Key: sts.Key(t, "deft-client"),
		Scopes: []string{"nhn:deft/api"}, Organization: client.Organization{Child: servertest.Child},
		HTTPClient: &http.Client{Transport: tr}, Now: sts.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.TokenSource(client.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &client.Transport{Source: ts, Base: tr}}

	resp, err := hc.Get(api.URL + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	var who caller
	json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if resp.StatusCode != 200 || who.ClientID != "deft-client" || who.Tenancy != "single-tenant" ||
		who.Organization.Parent != servertest.Customer || who.Organization.Child != servertest.Child ||
		who.Organization.Supplier != servertest.Supplier || who.Person != nil {
		t.Fatalf("whoami: %d %+v", resp.StatusCode, who)
	}
	// The nonce round trip at the STS, then at the API.
	want := "GET /.well-known/openid-configuration 200\nPOST /connect/token 400\nPOST /connect/token 200\nGET /whoami 401\nGET /whoami 200"
	if got := tr.take(); got != want {
		t.Fatalf("exchanges:\n%s\nwant:\n%s", got, want)
	}

	resp, err = hc.Post(api.URL+"/files", "application/octet-stream", bytes.NewReader(make([]byte, 1234)))
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		Received int64 `json:"received_bytes"`
	}
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if resp.StatusCode != 201 || up.Received != 1234 {
		t.Fatalf("upload: %d %+v", resp.StatusCode, up)
	}
	if got := tr.take(); got != "POST /files 201" {
		t.Fatalf("with the token and the API's nonce cached: %s", got)
	}

	// Without a token: a DPoP challenge; with a Bearer token: refused.
	resp, err = http.Get(api.URL + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "DPoP algs=") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	tok, _ := ts.Token(t.Context())
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("Bearer: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
