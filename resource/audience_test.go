package resource_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/resource"
)

// TestSingleAudience: with SingleAudience, a token for this API and any
// other is refused, however the aud is written; without it, such a token
// passes. The tokens are signed by the real STS key.
func TestSingleAudience(t *testing.T) {
	h := newHarness(t)
	now := h.sts.Clock.Now()
	good := h.token(t, client.TokenRequest{})
	base := claimsOf(t, good)
	withAud := func(aud any) string {
		c := map[string]any{}
		for k, v := range base {
			c[k] = v
		}
		c["aud"] = aud
		return h.resign(t, c)
	}
	single := h.validator(t, func(c *resource.Config) { c.SingleAudience = true })
	multi := h.validator(t, nil)
	const refused = `error="invalid_token", error_description="access token is for other APIs too (aud)"`
	tests := []struct {
		name      string
		v         *resource.Validator
		aud       any
		wantCode  int
		wantError string // part of WWW-Authenticate; "" for none
	}{
		{"one audience as a string", single, "nhn:deft", 200, ""},
		{"one audience in a list", single, []string{"nhn:deft"}, 200, ""},
		{"two audiences", single, []string{"nhn:deft", "nhn:other"}, 401, refused},
		{"two audiences, this API last", single, []string{"nhn:other", "nhn:deft"}, 401, refused},
		{"this API twice", single, []string{"nhn:deft", "nhn:deft"}, 401, refused},
		{"two audiences without SingleAudience", multi, []string{"nhn:deft", "nhn:other"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := withAud(tt.aud)
			resp, _ := call(tt.v, newRequest(http.MethodGet, apiURL, "DPoP "+tok, h.proof(t, http.MethodGet, apiURL, tok, now)))
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, challenge, tt.wantCode)
			}
			if tt.wantError != "" && !strings.Contains(challenge, tt.wantError) {
				t.Fatalf("challenge %s, want %s", challenge, tt.wantError)
			}
		})
	}
}

// TestKeyAlg: a key the issuer publishes with alg RS256 verifies RS256
// only (RFC 7517 §4.4), never a PS256 signature made with the same RSA key,
// and a key without alg verifies any algorithm that fits it. The issuer is
// a stand-in that serves discovery and the JWKS; the tokens are real
// signatures.
func TestKeyAlg(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "rs256", Algorithm: "RS256", Use: "sig"},
			{Key: &key.PublicKey, KeyID: "any", Use: "sig"},
		}})
	})
	now := time.Unix(1_800_000_000, 0)
	v, err := resource.New(resource.Config{
		Issuer: srv.URL, Audience: "nhn:deft", InsecureBearer: true,
		Now: func() time.Time { return now }, HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(alg, kid string) string {
		return jwttest.JWT{
			Header: map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"},
			Claims: map[string]any{"iss": srv.URL, "aud": "nhn:deft", "client_id": "c", "scope": "nhn:deft/api",
				"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "j"},
			Key: key,
		}.Sign(t)
	}
	tests := []struct {
		name      string
		alg, kid  string
		wantCode  int
		wantError string
	}{
		{"RS256 with the RS256 key", "RS256", "rs256", 200, ""},
		{"PS256 with the RS256 key", "PS256", "rs256", 401, `error="invalid_token", error_description="access token alg is not the alg of its key"`},
		{"RS512 with the RS256 key", "RS512", "rs256", 401, `error="invalid_token", error_description="access token alg is not the alg of its key"`},
		{"PS256 with a key without alg", "PS256", "any", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := call(v, newRequest(http.MethodGet, apiURL, "Bearer "+sign(tt.alg, tt.kid)))
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, challenge, tt.wantCode)
			}
			if tt.wantError != "" && !strings.Contains(challenge, tt.wantError) {
				t.Fatalf("challenge %s, want %s", challenge, tt.wantError)
			}
		})
	}
}
