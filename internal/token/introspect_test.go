package token_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/token"
)

// endpointCall is one request to the introspection or revocation endpoint.
type endpointCall struct {
	client    string
	assertion func(h, c map[string]any)
	// rawAssertion replaces the built one when set.
	rawAssertion string
	form         func(url.Values)
	header       func(http.Header)
	method       string
}

// post sends c to the endpoint at path, authenticated with
// private_key_jwt. An empty body (revocation's success) gives a nil body.
func (h *harness) post(path string, c endpointCall) result {
	t := h.t
	t.Helper()
	r := result{assertion: c.rawAssertion}
	if r.assertion == "" {
		r.assertion = h.assertion(c.client, c.assertion)
	}
	form := url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {r.assertion},
	}
	if c.form != nil {
		c.form(form)
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, h.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.header != nil {
		c.header(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r.status, r.header = resp.StatusCode, resp.Header
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
		}
	}
	return r
}

func tokenParam(tok string) func(url.Values) {
	return func(f url.Values) { f.Set("token", tok) }
}

// TestEndpointsForgeOneFault breaks one thing per row of a valid request to
// the introspection and the revocation endpoint.
func TestEndpointsForgeOneFault(t *testing.T) {
	h := start(t)
	sfmToken := sfmSubject(h)
	key := newP256(t)
	rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	othersRT := h.RefreshToken(t, "multi-client", "", login)
	tests := []struct {
		name       string
		path       string
		call       endpointCall
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		{"introspection GET", token.IntrospectionPath, endpointCall{client: "sfm-actor", form: tokenParam(sfmToken), method: http.MethodGet}, 405, "invalid_request", "the introspection endpoint accepts POST only"},
		{"introspection without client authentication", token.IntrospectionPath, endpointCall{client: "sfm-actor", form: func(f url.Values) {
			f.Del("client_assertion")
			f.Del("client_assertion_type")
			f.Set("token", sfmToken)
		}}, 401, "invalid_client", "private_key_jwt"},
		{"introspection with a client secret", token.IntrospectionPath, endpointCall{client: "sfm-actor", form: func(f url.Values) {
			f.Del("client_assertion")
			f.Del("client_assertion_type")
			f.Set("client_secret", "s")
			f.Set("token", sfmToken)
		}}, 401, "invalid_client", "client secrets are not accepted"},
		{"introspection assertion for the revocation endpoint", token.IntrospectionPath, endpointCall{client: "sfm-actor", form: tokenParam(sfmToken),
			assertion: func(h2, c map[string]any) { c["aud"] = h.URL + token.RevocationPath }}, 401, "invalid_client", "aud"},
		{"introspection assertion signed by another key", token.IntrospectionPath, endpointCall{client: "sfm-actor", form: tokenParam(sfmToken),
			rawAssertion: forgeAssertion(t, h, newP256(t), "sfm-actor", h.Key(t, "sfm-actor").KeyID)}, 401, "invalid_client", "signature is invalid"},
		{"introspection by a client that owns no API", token.IntrospectionPath, endpointCall{client: "deft-client", form: tokenParam(sfmToken)}, 400, "unauthorized_client", "owns none"},
		{"introspection without token", token.IntrospectionPath, endpointCall{client: "sfm-actor"}, 400, "invalid_request", "token is missing"},

		{"revocation GET", token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam(rt), method: http.MethodGet}, 405, "invalid_request", "the revocation endpoint accepts POST only"},
		{"revocation without client authentication", token.RevocationPath, endpointCall{client: "refresh-client", form: func(f url.Values) {
			f.Del("client_assertion")
			f.Set("token", rt)
		}}, 401, "invalid_client", "client_assertion"},
		{"revocation assertion for the introspection endpoint", token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam(rt),
			assertion: func(h2, c map[string]any) { c["aud"] = h.URL + token.IntrospectionPath }}, 401, "invalid_client", "aud"},
		{"revocation without token", token.RevocationPath, endpointCall{client: "refresh-client"}, 400, "invalid_request", "token is missing"},
		{"revocation of another client's refresh token", token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam(othersRT)}, 400, "invalid_grant", "issued to another client"},
		{"revocation of an access token", token.RevocationPath, endpointCall{client: "sfm-client", form: tokenParam(sfmToken)}, 400, "unsupported_token_type", "access tokens cannot be revoked"},
		{"revocation, a token given twice", token.RevocationPath, endpointCall{client: "refresh-client", form: func(f url.Values) { f["token"] = []string{rt, rt} }}, 400, "invalid_request", "token is given more than once"},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.post(tt.path, tt.call)
			fmt.Fprintf(&golden, "%s\n\t%d %s: %s\n", tt.name, r.status, r.code(), strings.ReplaceAll(r.description(), h.URL, "{issuer}"))
			if r.status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code(), r.description(), tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("error_description %q does not say %q", r.description(), tt.wantDesc)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
			}
		})
	}
	checkGolden(t, "testdata/endpoints.golden", golden.String())

	// The refusals revoked nothing.
	h.t = t
	if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))}); r.status != 200 {
		t.Fatalf("refresh token after the refused revocations: %d %v", r.status, r.body)
	}
	if r := h.do(call{client: "multi-client", noDPoP: true, assertion: details(multiDetail("NO:ORGNR:" + servertest.TenantAll)), form: refresh(othersRT, withResource("test:bearer"))}); r.status != 200 {
		t.Fatalf("another client's refresh token after the refused revocation: %d %v", r.status, r.body)
	}
}

// TestIntrospection: an API's owner learns about the live access tokens of
// its API, and about nothing else.
func TestIntrospection(t *testing.T) {
	h := start(t)
	dpopKey := newP256(t)
	sfmToken := h.token(call{client: "sfm-client", dpopKey: dpopKey})
	bearerToken := h.token(call{client: "bearer-client", noDPoP: true})
	expired := h.mint(with(claims(t, sfmToken), func(c map[string]any) { c["exp"] = h.Clock.Now().Unix() }))
	rt := h.RefreshToken(t, "refresh-client", "", login)

	tests := []struct {
		name       string
		client     string
		token      string
		assertion  func(h, c map[string]any)
		wantActive bool
	}{
		{name: "a live token of the owner's API", client: "sfm-actor", token: sfmToken, wantActive: true},
		{name: "the API's other owner", client: "sfm-other-actor", token: sfmToken, wantActive: true},
		{name: "assertion aud is the introspection endpoint", client: "sfm-actor", token: sfmToken, wantActive: true,
			assertion: func(h2, c map[string]any) { c["aud"] = h.URL + token.IntrospectionPath }},
		{name: "assertion aud is the token endpoint", client: "sfm-actor", token: sfmToken, wantActive: true,
			assertion: func(h2, c map[string]any) { c["aud"] = h.URL + token.Path }},
		{name: "a token of an API the caller does not own", client: "sfm-actor", token: bearerToken},
		{name: "a token of an API with other owners", client: "chain-actor", token: sfmToken},
		{name: "an expired token", client: "sfm-actor", token: expired},
		{name: "a tampered token", client: "sfm-actor", token: tamper(sfmToken)},
		{name: "not a token", client: "sfm-actor", token: "hello"},
		{name: "a refresh token", client: "sfm-actor", token: rt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.post(token.IntrospectionPath, endpointCall{client: tt.client, assertion: tt.assertion, form: tokenParam(tt.token)})
			if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d %v", r.status, r.body)
			}
			if r.body["active"] != tt.wantActive {
				t.Fatalf("active %v, want %v", r.body["active"], tt.wantActive)
			}
			if !tt.wantActive {
				if len(r.body) != 1 {
					t.Fatalf("an inactive answer says more than active: %v", r.body)
				}
				return
			}
			c := claims(t, sfmToken)
			for _, k := range []string{"iss", "aud", "client_id", "jti", "exp", sfmIDClaim, orgNrParentClaim} {
				if fmt.Sprint(r.body[k]) != fmt.Sprint(c[k]) {
					t.Errorf("%s = %v, want the token's %v", k, r.body[k], c[k])
				}
			}
			if r.body["scope"] != "e-helse:sfm.api/sfm.api" || r.body["token_type"] != "DPoP" {
				t.Errorf("scope %v, token_type %v", r.body["scope"], r.body["token_type"])
			}
			if cnf, _ := r.body["cnf"].(map[string]any); cnf["jkt"] != thumbprint(t, dpopKey) {
				t.Errorf("cnf %v", r.body["cnf"])
			}
		})
	}

	// The assertion is single-use here too.
	h.t = t
	a := h.assertion("sfm-actor", nil)
	if r := h.post(token.IntrospectionPath, endpointCall{rawAssertion: a, form: tokenParam(sfmToken)}); r.status != 200 {
		t.Fatalf("first use: %d %v", r.status, r.body)
	}
	if r := h.post(token.IntrospectionPath, endpointCall{rawAssertion: a, form: tokenParam(sfmToken)}); r.code() != "invalid_client" || !strings.Contains(r.description(), "already used") {
		t.Fatalf("replayed assertion: %d %v", r.status, r.body)
	}
}

// TestRevocation: revoking any refresh token of a login revokes them all;
// the answer is 200 for a token that is not valid (RFC 7009 §2.2).
func TestRevocation(t *testing.T) {
	h := start(t)
	key := newP256(t)
	first := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	other := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(first, withResource("nhn:deft"))})
	if r.status != 200 {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	second := r.body["refresh_token"].(string)

	tests := []struct {
		name  string
		form  func(url.Values)
		check func(t *testing.T)
	}{
		{"the newest token of a login, with a hint that is wrong", func(f url.Values) {
			f.Set("token", second)
			f.Set("token_type_hint", "access_token")
		}, func(t *testing.T) {
			if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(second, withResource("nhn:deft"))}); r.description() != "refresh_token has been revoked" {
				t.Errorf("revoked token: %d %v", r.status, r.body)
			}
		}},
		{"again: already revoked", tokenParam(second), nil},
		{"a token that is not one", tokenParam("no-such-token"), nil},
		{"assertion aud is the revocation endpoint", tokenParam(token.NewRefreshTokenValue()), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			c := endpointCall{client: "refresh-client", form: tt.form}
			if strings.HasPrefix(tt.name, "assertion aud") {
				c.assertion = func(h2, cl map[string]any) { cl["aud"] = h.URL + token.RevocationPath }
			}
			r := h.post(token.RevocationPath, c)
			if r.status != 200 || r.body != nil {
				t.Fatalf("status %d %v, want 200 with no body", r.status, r.body)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	h.t = t
	for _, tc := range []struct{ name, rt string }{{"rotated", first}, {"another login", other}} {
		r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(tc.rt, withResource("nhn:deft"))})
		switch tc.name {
		case "rotated":
			if r.code() != "invalid_grant" {
				t.Errorf("the login's rotated token after revocation: %d %v", r.status, r.body)
			}
		default:
			if r.status != 200 {
				t.Errorf("another login's token after revocation: %d %v", r.status, r.body)
			}
		}
	}
}
