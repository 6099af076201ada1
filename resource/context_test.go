package resource_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/resource"
)

// TestAccessTokenFromContext: the handler gets the token it was called with,
// exactly as the Authorization header carried it without its scheme; a
// refused request never reaches it, and a context without the middleware
// has none.
func TestAccessTokenFromContext(t *testing.T) {
	h := newHarness(t)
	v := h.validator(t, nil)
	now := h.sts.Clock.Now()
	tok := h.token(t, client.TokenRequest{})
	var got string
	var ok, inherited bool
	type otherKey struct{}
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), otherKey{}, "kept"))
	defer cancel()
	handler := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = resource.AccessTokenFromContext(r.Context())
		// The request's own context still works as it did.
		inherited = r.Context().Value(otherKey{}) == "kept" && r.Context().Done() == parent.Done()
		io.WriteString(w, "ok")
	}))

	rec := httptest.NewRecorder()
	req := newRequest("GET", apiURL, "DPoP  "+tok, h.proof(t, "GET", apiURL, tok, now)).WithContext(parent)
	handler.ServeHTTP(rec, req)
	if rec.Code != 200 || !ok || got != tok || !inherited {
		t.Fatalf("status %d, token %t %q, parent context kept %t", rec.Code, ok, got, inherited)
	}

	got, ok = "", false
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, newRequest("GET", apiURL, "DPoP "+tok+"x", h.proof(t, "GET", apiURL, tok+"x", now)))
	if rec.Code != 401 || ok || got != "" {
		t.Fatalf("forged token: status %d, handler saw %t", rec.Code, ok)
	}
	if tok, ok := resource.AccessTokenFromContext(resource.WithClaims(t.Context(), &resource.Claims{})); ok || tok != "" {
		t.Fatalf("WithClaims: token %q", tok)
	}
	if _, ok := resource.ClaimsFromContext(t.Context()); ok {
		t.Fatal("claims in a bare context")
	}
}

// TestNewNonces: the one-line nonce sources make the API ask for nonces;
// instances with one shared key take each other's, instances with their own
// random keys do not.
func TestNewNonces(t *testing.T) {
	h := newHarness(t)
	now := h.sts.Clock.Now()
	tok := h.token(t, client.TokenRequest{})
	secret := []byte("a shared nonce key, 32 bytes....")
	shared := func() *dpop.Nonces {
		n, err := resource.SharedNonces(secret)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := h.validator(t, func(c *resource.Config) { c.Nonces = shared() })
	b := h.validator(t, func(c *resource.Config) { c.Nonces = shared() })
	lone := h.validator(t, func(c *resource.Config) { c.Nonces = resource.NewNonces() })

	resp, _ := call(a, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now)))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 401 || nonce == "" {
		t.Fatalf("without a nonce: %d", resp.StatusCode)
	}
	withNonce := func() string {
		p, err := h.proofs.Proof("GET", apiURL, dpop.ProofOptions{AccessToken: tok, Nonce: nonce, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		v        *resource.Validator
		wantCode int
	}{
		{"instance that issued it", a, 200},
		{"instance with the shared key", b, 200},
		{"instance with its own random key", lone, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, _ := call(tt.v, newRequest("GET", apiURL, "DPoP "+tok, withNonce())); resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if _, err := resource.SharedNonces(secret[:31]); err == nil || err.Error() != "resource: the nonce key has 31 bytes, want at least 32" {
		t.Fatalf("short key: %v", err)
	}
}

// TestActorJSON: an act chain marshals with the claim names of the token.
func TestActorJSON(t *testing.T) {
	a := resource.Actor{ClientID: "sfm", Subject: "s", Organization: resource.Organization{Parent: "994598759"},
		Act: &resource.Actor{ClientID: "first"}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"client_id":"sfm","sub":"s","organization":{"parent":"994598759"},"act":{"client_id":"first","organization":{}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

// TestOrganizationShared: a token's organisation is the type a client names
// one with, so an API that acts for its caller's organisation passes it on
// as it is; its JSON names are the ones APIs have been writing.
func TestOrganizationShared(t *testing.T) {
	var fromToken resource.Organization = helseid.Organization{Parent: "994598759", Child: "313231593", Supplier: "310900109"}
	req := client.TokenRequest{Organization: fromToken}
	b, err := json.Marshal(req.Organization)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"parent":"994598759","child":"313231593","supplier":"310900109"}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}
