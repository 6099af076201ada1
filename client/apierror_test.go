package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/resource"
)

// TestResponseError reads the challenges APIs send, RFC 6750 and RFC 9449
// style, and ignores what is not a refusal.
func TestResponseError(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		headers []string
		want    *client.APIError // nil: no error
	}{
		{"200 is not a refusal", 200, []string{`DPoP error="invalid_token"`}, nil},
		{"404 is the API's own business", 404, nil, nil},
		{"500 is not a refusal of the credentials", 500, nil, nil},
		{"401 without a challenge", 401, nil, &client.APIError{StatusCode: 401}},
		{"401 without an error (no token sent)", 401, []string{`DPoP algs="ES256 PS256"`},
			&client.APIError{StatusCode: 401, Scheme: "DPoP", Algs: []string{"ES256", "PS256"}}},
		{"invalid_token with description and algs", 401,
			[]string{`DPoP error="invalid_token", error_description="access token has expired", algs="ES256"`},
			&client.APIError{StatusCode: 401, Scheme: "DPoP", Code: "invalid_token", Description: "access token has expired", Algs: []string{"ES256"}}},
		{"insufficient_scope names the scope", 403,
			[]string{`Bearer error="insufficient_scope", scope="nhn:deft/api nhn:deft/write"`},
			&client.APIError{StatusCode: 403, Scheme: "Bearer", Code: "insufficient_scope", Scope: "nhn:deft/api nhn:deft/write"}},
		{"the challenge with an error wins over an earlier one", 401,
			[]string{`Bearer realm="api"`, `DPoP error="use_dpop_nonce", error_description="nonce needed"`},
			&client.APIError{StatusCode: 401, Scheme: "DPoP", Code: "use_dpop_nonce", Description: "nonce needed"}},
		{"two challenges in one header", 401,
			[]string{`Basic realm="x", DPoP error="invalid_dpop_proof", algs="ES256"`},
			&client.APIError{StatusCode: 401, Scheme: "DPoP", Code: "invalid_dpop_proof", Algs: []string{"ES256"}}},
		{"token values, upper-case names, escapes", 401,
			[]string{`dpop ERROR=invalid_token, error_description="a \"quoted\" word"`},
			&client.APIError{StatusCode: 401, Scheme: "dpop", Code: "invalid_token", Description: `a "quoted" word`}},
		{"only a foreign scheme", 401, []string{`Basic realm="x"`}, &client.APIError{StatusCode: 401}},
		{"unterminated quote keeps what came", 401, []string{`DPoP error="invalid_tok`},
			&client.APIError{StatusCode: 401, Scheme: "DPoP", Code: "invalid_tok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Www-Authenticate": tt.headers}}
			err := client.ResponseError(resp)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want an *APIError", err)
			}
			if !reflect.DeepEqual(ae, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", ae, tt.want)
			}
		})
	}
}

// TestE2EResponseError: a real API's refusals, read through Transport,
// which still hands back the response.
func TestE2EResponseError(t *testing.T) {
	e := startE2E(t)
	v, err := resource.New(resource.Config{Issuer: e.srv.URL, Audience: "nhn:deft", Scopes: []string{"nhn:deft/api"}, Now: e.srv.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("/open", v.Middleware(ok))
	mux.Handle("/admin", v.Middleware(v.RequireScopes("nhn:deft/admin")(ok)))
	api := httptest.NewServer(mux)
	defer api.Close()

	call := func(t *testing.T, clientID string, scopes []string, path string) error {
		ts, err := e.client(t, clientID, nil).TokenSource(client.TokenRequest{Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: &client.Transport{Source: ts}}).Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if resp.StatusCode >= 400 {
			// The body is still there for callers that read it.
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["error"] == "" {
				t.Fatalf("body %v, %v", body, err)
			}
		}
		return client.ResponseError(resp)
	}
	tests := []struct {
		name       string
		clientID   string
		scopes     []string
		path       string
		wantStatus int
		wantCode   string
		wantScope  string
	}{
		{"accepted", "deft-client", []string{"nhn:deft/api"}, "/open", 0, "", ""},
		{"a route that needs another scope", "deft-client", []string{"nhn:deft/api"}, "/admin", 403, "insufficient_scope", "nhn:deft/admin"},
		{"a token for another API", "sfm-client", nil, "/open", 401, "invalid_token", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := call(t, tt.clientID, tt.scopes, tt.path)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want an *APIError", err)
			}
			if ae.StatusCode != tt.wantStatus || ae.Code != tt.wantCode || ae.Scope != tt.wantScope || ae.Scheme != "DPoP" || len(ae.Algs) == 0 {
				t.Fatalf("got %+v, want %d %s scope %q", ae, tt.wantStatus, tt.wantCode, tt.wantScope)
			}
		})
	}
}

// fakeIssuer is an issuer whose discovery document is served as it should be
// and whose token endpoint answers with token.
func fakeIssuer(t *testing.T, discovery int, token http.HandlerFunc) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			if discovery != 200 {
				w.WriteHeader(discovery)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "token_endpoint": srv.URL + "/connect/token"})
		case "/connect/token":
			token(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestIssuerUnreachable tells failures of the issuer, which may pass, from
// its refusals, which will not.
func TestIssuerUnreachable(t *testing.T) {
	e := startE2E(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	status := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, body)
		}
	}
	tests := []struct {
		name            string
		issuer          string // empty: the real STS
		mod             func(*client.Config)
		cancel          bool
		wantUnreachable bool
		wantStatus      int // of the *client.Error; 0 for none
	}{
		{name: "no server", issuer: down.URL, wantUnreachable: true},
		{name: "discovery 503", issuer: fakeIssuer(t, 503, nil).URL, wantUnreachable: true},
		{name: "token endpoint 502 from a proxy", issuer: fakeIssuer(t, 200, status(502, "<html>bad gateway</html>")).URL, wantUnreachable: true, wantStatus: 502},
		{name: "token endpoint server_error", issuer: fakeIssuer(t, 200, status(500, `{"error":"server_error"}`)).URL, wantUnreachable: true, wantStatus: 500},
		{name: "refusal by the real STS", mod: func(c *client.Config) { c.Key = e.srv.Key(t, "sfm-client") }, wantStatus: 401},
		{name: "refusal by a token endpoint", issuer: fakeIssuer(t, 200, status(400, `{"error":"invalid_grant"}`)).URL, wantStatus: 400},
		{name: "the caller gave up", issuer: down.URL, cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t, "deft-client", func(c *client.Config) {
				if tt.issuer != "" {
					c.Issuer, c.HTTPClient = tt.issuer, nil
				}
				if tt.mod != nil {
					tt.mod(c)
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			_, err := c.Token(ctx, client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, client.ErrIssuerUnreachable); got != tt.wantUnreachable {
				t.Fatalf("errors.Is(%v, ErrIssuerUnreachable) = %t, want %t", err, got, tt.wantUnreachable)
			}
			var ce *client.Error
			if gotStatus := 0; errors.As(err, &ce) {
				gotStatus = ce.StatusCode
				if gotStatus != tt.wantStatus {
					t.Fatalf("status %d, want %d", gotStatus, tt.wantStatus)
				}
			} else if tt.wantStatus != 0 {
				t.Fatalf("got %v, want a *client.Error of %d", err, tt.wantStatus)
			}
		})
	}
}
