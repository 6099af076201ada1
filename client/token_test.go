package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
)

const testTokenEndpoint = testIssuer + "/connect/token"

// readForm parses the body of a built request exactly as a server would,
// and refuses repeated parameters (the token pipeline does too).
func readForm(t *testing.T, req *http.Request) url.Values {
	t.Helper()
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Fatalf("Content-Type %q", ct)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range form {
		if len(v) != 1 {
			t.Fatalf("parameter %s sent %d times", k, len(v))
		}
	}
	return form
}

func TestTokenRequestForm(t *testing.T) {
	key := testKey(t, jose.PS256)
	c := newTestClient(t, Config{Key: key})
	org, err := helseid.NewMultiTenantOrganization("994598759", "313231593")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		form        url.Values
		details     []helseid.Detail
		want        map[string]string
		wantDetails bool
	}{
		{
			name: "scopes and resource",
			form: url.Values{"grant_type": {"client_credentials"}, "scope": {"nhn:deft/api nhn:msh/api"}, "resource": {"nhn:deft"}},
			want: map[string]string{"grant_type": "client_credentials", "scope": "nhn:deft/api nhn:msh/api", "resource": "nhn:deft"},
		},
		{
			name: "neither scope nor resource",
			form: url.Values{"grant_type": {"client_credentials"}},
			want: map[string]string{"grant_type": "client_credentials"},
		},
		{
			name:        "with assertion details",
			form:        url.Values{"grant_type": {"client_credentials"}},
			details:     []helseid.Detail{org},
			want:        map[string]string{"grant_type": "client_credentials"},
			wantDetails: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := c.newTokenRequest(context.Background(), testTokenEndpoint, tt.form, tt.details, false, "")
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodPost || req.URL.String() != testTokenEndpoint {
				t.Fatalf("%s %s", req.Method, req.URL)
			}
			form := readForm(t, req)
			tt.want["client_id"] = testClientID
			tt.want["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
			for k, v := range tt.want {
				if form.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, form.Get(k), v)
				}
			}
			if len(form) != len(tt.want)+1 {
				t.Errorf("form has %d parameters, want %d: %v", len(form), len(tt.want)+1, form)
			}
			_, claims := verifyAssertion(t, form.Get("client_assertion"), key)
			if _, ok := claims[helseid.ClaimAssertionDetails]; ok != tt.wantDetails {
				t.Errorf("assertion_details present %v, want %v", ok, tt.wantDetails)
			}
			if tt.form.Get("client_assertion") != "" {
				t.Error("the caller's form was modified")
			}
		})
	}
}

func TestTokenRequestProof(t *testing.T) {
	clientKey := testKey(t, jose.PS256)
	dpopKey := testKey(t, jose.ES256)
	tests := []struct {
		name    string
		cfg     Config
		nonce   string
		wantJKT string
	}{
		{name: "first request has no nonce", cfg: Config{Key: clientKey}, wantJKT: clientKey.KeyID},
		{name: "retry carries the nonce", cfg: Config{Key: clientKey}, nonce: "bm9uY2U", wantJKT: clientKey.KeyID},
		{name: "separate DPoP key", cfg: Config{Key: clientKey, DPoPKey: dpopKey}, nonce: "bm9uY2U", wantJKT: dpopKey.KeyID},
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.cfg)
			req, err := c.newTokenRequest(context.Background(), testTokenEndpoint, form, nil, false, tt.nonce)
			if err != nil {
				t.Fatal(err)
			}
			proofs := req.Header.Values("DPoP")
			if len(proofs) != 1 {
				t.Fatalf("%d DPoP headers", len(proofs))
			}
			var v dpop.Verifier
			p, err := v.Verify(proofs[0], dpop.Request{Method: http.MethodPost, URL: testTokenEndpoint, Now: testNow})
			if err != nil {
				t.Fatalf("proof does not verify: %v", err)
			}
			if p.Nonce != tt.nonce {
				t.Errorf("nonce %q, want %q", p.Nonce, tt.nonce)
			}
			if p.Thumbprint != tt.wantJKT || c.DPoPThumbprint() != tt.wantJKT {
				t.Errorf("proof key %q, client says %q, want %q", p.Thumbprint, c.DPoPThumbprint(), tt.wantJKT)
			}
			if !p.IssuedAt.Equal(testNow) {
				t.Errorf("iat %v", p.IssuedAt)
			}
			// The proof is bound to the token endpoint and nothing else.
			if _, err := v.Verify(proofs[0], dpop.Request{Method: http.MethodPost, URL: testIssuer + "/connect/par", Now: testNow}); !errors.Is(err, dpop.ErrInvalidProof) {
				t.Errorf("proof accepted for another URL: %v", err)
			}
		})
	}
}

// TestTokenRequestProofNonceCheckedByServer runs the proof through the
// verifier the token endpoint uses when nonces are on: without a nonce it
// asks for one, with the nonce it issued it passes.
func TestTokenRequestProofNonceCheckedByServer(t *testing.T) {
	nonces := dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: []byte("0123456789abcdef0123456789abcdef")})
	v := dpop.Verifier{Nonces: nonces}
	c := newTestClient(t, Config{Key: testKey(t, jose.ES256)})
	form := url.Values{"grant_type": {"client_credentials"}}
	r := dpop.Request{Method: http.MethodPost, URL: testTokenEndpoint, Now: testNow}

	req, err := c.newTokenRequest(context.Background(), testTokenEndpoint, form, nil, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(req.Header.Get("DPoP"), r); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("proof without nonce: %v, want ErrUseNonce", err)
	}
	req, err = c.newTokenRequest(context.Background(), testTokenEndpoint, form, nil, false, nonces.Issue(testNow))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(req.Header.Get("DPoP"), r); err != nil {
		t.Fatalf("proof with the server's nonce: %v", err)
	}
}

func TestTokenRequestBearer(t *testing.T) {
	c := newTestClient(t, Config{})
	req, err := c.newTokenRequest(context.Background(), testTokenEndpoint, url.Values{"grant_type": {"client_credentials"}}, nil, true, "bm9uY2U")
	if err != nil {
		t.Fatal(err)
	}
	if v := req.Header.Values("DPoP"); len(v) != 0 {
		t.Fatalf("Bearer request carries a DPoP proof: %v", v)
	}
}

func TestTokenRequestAssertionsAreNotReused(t *testing.T) {
	c := newTestClient(t, Config{Key: testKey(t, jose.ES256)})
	form := url.Values{"grant_type": {"client_credentials"}}
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		req, err := c.newTokenRequest(context.Background(), testTokenEndpoint, form, nil, false, "")
		if err != nil {
			t.Fatal(err)
		}
		f := readForm(t, req)
		for _, v := range []string{f.Get("client_assertion"), req.Header.Get("DPoP")} {
			if seen[v] {
				t.Fatal("an assertion or proof was sent twice")
			}
			seen[v] = true
		}
	}
}

// TestTokenRejectsBadScope fails before any I/O: the issuer below does not
// exist.
func TestTokenRejectsBadScope(t *testing.T) {
	c := newTestClient(t, Config{Issuer: "https://sts.invalid"})
	tests := []struct {
		name    string
		scopes  []string
		wantErr string
	}{
		{"space inside", []string{"nhn:deft/api nhn:msh/api"}, `client: scope "nhn:deft/api nhn:msh/api" is empty or has white space`},
		{"empty", []string{"nhn:deft/api", ""}, `client: scope "" is empty or has white space`},
		{"newline", []string{"a\nb"}, `client: scope "a\nb" is empty or has white space`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Token(context.Background(), TokenRequest{Scopes: tt.scopes})
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadTokenResponse(t *testing.T) {
	sent := testNow
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		want      *TokenResponse
		wantNonce string
		// wantErr is an *Error to match exactly, or a plain error whose
		// text must start with the given text (what follows is
		// encoding/json's own wording).
		wantErr error
	}{
		{
			name:   "DPoP token",
			status: 200,
			body:   `{"access_token":"eyJ.a.b","token_type":"DPoP","expires_in":3600,"scope":"nhn:deft/api","rejected_scope":"nhn:msh/api"}`,
			want:   &TokenResponse{AccessToken: "eyJ.a.b", TokenType: "DPoP", ExpiresIn: 3600, Scope: "nhn:deft/api", RejectedScope: "nhn:msh/api", Expiry: sent.Add(time.Hour)},
		},
		{
			name:      "refresh token, issued token type and a new nonce",
			status:    200,
			header:    http.Header{"Dpop-Nonce": {"n2"}},
			body:      `{"access_token":"x","token_type":"Bearer","refresh_token":"r","rt_expires_in":36000,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token","id_token":"h.p.s"}`,
			want:      &TokenResponse{AccessToken: "x", TokenType: "Bearer", RefreshToken: "r", RefreshTokenExpiresIn: 36000, IssuedTokenType: "urn:ietf:params:oauth:token-type:access_token", IDToken: "h.p.s"},
			wantNonce: "n2",
		},
		{
			name:      "use_dpop_nonce",
			status:    400,
			header:    http.Header{"Dpop-Nonce": {"n1"}},
			body:      `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`,
			wantNonce: "n1",
			wantErr:   &Error{Code: "use_dpop_nonce", Description: "Authorization server requires nonce in DPoP proof", StatusCode: 400},
		},
		{
			name:    "invalid_client",
			status:  401,
			body:    `{"error":"invalid_client"}`,
			wantErr: &Error{Code: "invalid_client", StatusCode: 401},
		},
		{
			name:    "HTML from a proxy",
			status:  502,
			body:    `<html><body>Bad Gateway</body></html>`,
			wantErr: &Error{StatusCode: 502},
		},
		{
			name:    "JSON without error",
			status:  400,
			body:    `{"message":"nope"}`,
			wantErr: &Error{StatusCode: 400},
		},
		{name: "no access token", status: 200, body: `{"token_type":"DPoP"}`, wantErr: errors.New("client: token response has no access_token")},
		{name: "no token type", status: 200, body: `{"access_token":"x"}`, wantErr: errors.New("client: token response has no token_type")},
		{name: "negative lifetime", status: 200, body: `{"access_token":"x","token_type":"DPoP","expires_in":-1}`, wantErr: errors.New("client: token response has a negative lifetime")},
		{name: "absurd lifetime", status: 200, body: `{"access_token":"x","token_type":"DPoP","expires_in":9223372036854775807}`, wantErr: errors.New("client: token response has a lifetime of more than ten years")},
		{name: "lifetime as a string", status: 200, body: `{"access_token":"x","token_type":"DPoP","expires_in":"3600"}`, wantErr: errors.New("client: token response is not valid JSON: json: ")},
		{name: "too large", status: 200, body: `{"access_token":"` + strings.Repeat("a", maxTokenResponseSize) + `","token_type":"DPoP"}`, wantErr: errors.New("client: token response: response is larger than 1048576 bytes")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			resp := &http.Response{StatusCode: tt.status, Header: h, Body: io.NopCloser(strings.NewReader(tt.body))}
			got, nonce, err := readTokenResponse(resp, sent)
			if nonce != tt.wantNonce {
				t.Errorf("nonce %q, want %q", nonce, tt.wantNonce)
			}
			if tt.wantErr != nil {
				if got != nil {
					t.Errorf("a response with the error: %+v", got)
				}
				var want *Error
				if errors.As(tt.wantErr, &want) {
					var e *Error
					if !errors.As(err, &e) || *e != *want {
						t.Fatalf("err = %#v, want %#v", err, want)
					}
					return
				}
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr.Error()) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Raw) != tt.body {
				t.Errorf("Raw %s", got.Raw)
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
