package client_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestTokenTransport calls an API with an exchanged token: the exchanged
// token in Authorization, a proof of the exchanging client's key with ath,
// and the API's nonce round trip.
func TestTokenTransport(t *testing.T) {
	e := startE2E(t)
	subject, err := e.client(t, "sfm-client", nil).Token(t.Context(), client.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sfm := e.client(t, "sfm-actor", nil)
	tok, err := sfm.Exchange(t.Context(), client.ExchangeRequest{SubjectToken: subject.AccessToken, Scopes: []string{servertest.RFScope}})
	if err != nil {
		t.Fatal(err)
	}
	nonces := dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: []byte("0123456789abcdef0123456789abcdef")})
	verifier := &dpop.Verifier{Nonces: nonces}
	calls := 0
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if scheme != "DPoP" || at != tok.AccessToken {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		proof, err := verifier.Verify(r.Header.Get("DPoP"), dpop.Request{Method: r.Method, URL: "http://" + r.Host + r.URL.Path, AccessToken: at, Now: e.srv.Clock.Now()})
		if err != nil {
			w.Header().Set("DPoP-Nonce", nonces.Issue(e.srv.Clock.Now()))
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if proof.Thumbprint != sfm.DPoPThumbprint() {
			t.Errorf("proof key %s, want the exchanging client's", proof.Thumbprint)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer api.Close()

	hc := &http.Client{Transport: &client.TokenTransport{Client: sfm, Token: tok}}
	resp, err := hc.Get(api.URL + "/prescriptions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || calls != 2 {
		t.Fatalf("status %d after %d calls, want 204 after the nonce round trip", resp.StatusCode, calls)
	}
	if _, err := (&client.TokenTransport{Client: sfm}).RoundTrip(httptest.NewRequest("GET", api.URL, nil)); err == nil {
		t.Fatal("a TokenTransport without a token sent a request")
	}
}
