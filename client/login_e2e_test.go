package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/resource"
)

const (
	loginPID      = "17056600574"
	loginRedirect = "http://127.0.0.1/callback"
)

// loginRegistry has a client that logs people in, for two APIs, and a
// TestIDP.
const loginRegistry = `
apis:
  - {audience: nhn:deft, name: DEFT, scopes: [nhn:deft/api]}
  - {audience: nhn:kjernejournal, name: Kjernejournal, scopes: [nhn:kjernejournal/api]}
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
  - {number: "310900044", name: "Customer AS, ward", parent: "310900036"}
client_systems:
  - {id: sys, name: Test EPJ, supplier: "310900028"}
clients:
  - id: web
    name: Web app
    system: sys
    organisation: "310900036"
    child_organisations: ["310900044"]
    grant_types: [authorization_code, refresh_token]
    scopes: [nhn:deft/api, nhn:kjernejournal/api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid, helseid://scopes/identity/security_level]
    redirect_uris: [http://127.0.0.1/callback]
    allow_loopback_any_port: true
    jwks: {{jwks "web" "ES256"}}
identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: TestIDP}
persons:
  - {pid: "17056600574", given_name: Kari, family_name: Nordmann}
`

func startLogin(t *testing.T) (*servertest.Server, *client.Client) {
	t.Helper()
	s := servertest.Start(t, servertest.Options{Registry: loginRegistry, Algorithm: "ES256",
		Settings: "environment: test\nrate_limit:\n  login_per_minute: 10000\n"})
	c, err := client.New(client.Config{Issuer: s.URL, ClientID: "web", Key: s.Key(t, "web"), Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// testLogin is an authorization request the TestIDP completes without a
// page.
func testLogin() client.AuthRequest {
	return client.AuthRequest{
		RedirectURI: loginRedirect,
		Scopes:      []string{"openid", "profile", "offline_access", "helseid://scopes/identity/pid", "nhn:deft/api", "nhn:kjernejournal/api"},
		Resources:   []string{"nhn:deft", "nhn:kjernejournal"},
		ACRValues:   []string{"idp:testidp-oidc"},
		Extra:       url.Values{"test_pid": {loginPID}, "test_security_level": {"4"}},
	}
}

// browse follows the redirects from authURL as a browser would, with
// cookies, and returns the query it brings to the redirect URI.
func browse(t *testing.T, authURL string) url.Values {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), loginRedirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), loginRedirect) {
		t.Fatalf("status %d, location %q: the browser did not come back", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func logIn(t *testing.T, c *client.Client) *client.Login {
	t.Helper()
	ctx := context.Background()
	p, err := c.PushAuthorization(ctx, testLogin())
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Exchange(ctx, browse(t, p.AuthURL))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A whole login: PAR, the TestIDP, the code for DPoP-bound tokens, a
// verified ID token, the person in the access token.
func TestLoginFlow(t *testing.T) {
	s, c := startLogin(t)
	e := &e2e{srv: s}
	l := logIn(t, c)
	if l.Claims.Issuer != s.URL || l.Claims.Subject == "" || l.Claims.Raw["helseid://claims/identity/pid"] != loginPID {
		t.Errorf("id token claims %+v", l.Claims)
	}
	if !strings.EqualFold(l.First.TokenType, "DPoP") || l.RefreshToken() == "" {
		t.Fatalf("token type %q, refresh token %t", l.First.TokenType, l.RefreshToken() != "")
	}
	at := e.accessClaims(t, c, l.First.AccessToken)
	if at["aud"] != "nhn:deft" || at["helseid://claims/identity/pid"] != loginPID {
		t.Errorf("access token aud %v pid %v", at["aud"], at["helseid://claims/identity/pid"])
	}
	if cnf, _ := at["cnf"].(map[string]any); cnf["jkt"] != c.DPoPThumbprint() {
		t.Errorf("cnf %v, want the DPoP key %s", at["cnf"], c.DPoPThumbprint())
	}
	end, err := l.EndSessionURL(context.Background(), "", "st")
	if err != nil || !strings.HasPrefix(end, s.URL+"/connect/endsession?") || !strings.Contains(end, "id_token_hint=") {
		t.Errorf("end session URL %q, %v", end, err)
	}
}

// A person logs in for a child organisation of the client, as a machine's
// token names one: the code is redeemed with it in assertion_details, the
// token carries it, and one not on the client's list is refused.
func TestLoginChildOrganization(t *testing.T) {
	s, c := startLogin(t)
	e := &e2e{srv: s}
	ctx := context.Background()
	r := testLogin()
	r.Organization = client.Organization{Child: "310900044"}
	p, err := c.PushAuthorization(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Exchange(ctx, browse(t, p.AuthURL))
	if err != nil {
		t.Fatal(err)
	}
	at := e.accessClaims(t, c, l.First.AccessToken)
	if at["helseid://claims/client/claims/orgnr_child"] != "310900044" || at["helseid://claims/identity/pid"] != loginPID {
		t.Errorf("orgnr_child %v, pid %v", at["helseid://claims/client/claims/orgnr_child"], at["helseid://claims/identity/pid"])
	}

	r.Organization = client.Organization{Child: "310900052"} // not the client's
	p, err = c.PushAuthorization(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	var oe *client.Error
	if _, err := p.Exchange(ctx, browse(t, p.AuthURL)); !errors.As(err, &oe) || oe.Code != "invalid_request" || !strings.Contains(oe.Description, "HID-1002") {
		t.Fatalf("Exchange for another child: %v, want invalid_request HID-1002", err)
	}
}

// The callback is refused when it is not the answer to this request:
// another state, another issuer or none (RFC 9207), no code.
func TestLoginCallbackRefused(t *testing.T) {
	_, c := startLogin(t)
	tests := []struct {
		name    string
		change  func(url.Values)
		wantErr string
	}{
		{name: "state of another request", change: func(q url.Values) { q.Set("state", "other") }, wantErr: "state does not match"},
		{name: "no state", change: func(q url.Values) { q.Del("state") }, wantErr: "state does not match"},
		{name: "another issuer", change: func(q url.Values) { q.Set("iss", "https://evil.example") }, wantErr: "is not the issuer"},
		{name: "no iss", change: func(q url.Values) { q.Del("iss") }, wantErr: "is not the issuer"},
		{name: "no code", change: func(q url.Values) { q.Del("code") }, wantErr: "has no code"},
		{name: "another code", change: func(q url.Values) { q.Set("code", "forged") }, wantErr: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p, err := c.PushAuthorization(ctx, testLogin())
			if err != nil {
				t.Fatal(err)
			}
			q := browse(t, p.AuthURL)
			tt.change(q)
			if _, err := p.Exchange(ctx, q); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Exchange: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// An error answer comes back as *Error, after state and iss are checked.
func TestLoginErrorAnswer(t *testing.T) {
	_, c := startLogin(t)
	ctx := context.Background()
	r := testLogin()
	// Level 4 asked for, a login at level 3 made: access_denied.
	r.ACRValues = append(r.ACRValues, "Level4")
	r.Extra.Set("test_security_level", "3")
	p, err := c.PushAuthorization(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Exchange(ctx, browse(t, p.AuthURL))
	var oe *client.Error
	if !errors.As(err, &oe) || oe.Code != "access_denied" || oe.StatusCode != 0 ||
		!strings.HasPrefix(err.Error(), "client: login: the issuer answered access_denied") {
		t.Fatalf("Exchange: %v, want access_denied", err)
	}
}

// A PendingLogin is for one callback: the second Exchange is refused
// before it reaches the server, which would end the login.
func TestLoginExchangeOnce(t *testing.T) {
	_, c := startLogin(t)
	ctx := context.Background()
	p, err := c.PushAuthorization(ctx, testLogin())
	if err != nil {
		t.Fatal(err)
	}
	q := browse(t, p.AuthURL)
	l, err := p.Exchange(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exchange(ctx, q); err == nil || !strings.Contains(err.Error(), "called already") {
		t.Fatalf("second Exchange: %v", err)
	}
	if _, err := l.Token(ctx, "nhn:kjernejournal"); err != nil {
		t.Fatalf("the login ended: %v", err)
	}
}

// The ID token is verified: one fault per row, each refused.
func TestVerifyIDToken(t *testing.T) {
	s, c := startLogin(t)
	ctx := context.Background()
	p, err := c.PushAuthorization(ctx, testLogin())
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Exchange(ctx, browse(t, p.AuthURL))
	if err != nil {
		t.Fatal(err)
	}
	nonce := l.Claims.Nonce
	other, err := client.New(client.Config{Issuer: s.URL, ClientID: "other", Key: s.Key(t, "web"), Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(l.IDToken, ".")
	tests := []struct {
		name    string
		c       *client.Client
		raw     string
		nonce   string
		advance time.Duration
		wantErr string
	}{
		{name: "valid", c: c, raw: l.IDToken, nonce: nonce},
		{name: "payload changed", c: c, raw: parts[0] + "." + flip(parts[1]) + "." + parts[2], nonce: nonce, wantErr: "id token"},
		{name: "signature changed", c: c, raw: parts[0] + "." + parts[1] + "." + flip(parts[2]), nonce: nonce, wantErr: "id token"},
		{name: "alg none", c: c, raw: "eyJhbGciOiJub25lIn0." + parts[1] + ".", nonce: nonce, wantErr: "id token"},
		{name: "another nonce", c: c, raw: l.IDToken, nonce: "other", wantErr: "nonce does not match"},
		{name: "no nonce", c: c, raw: l.IDToken, nonce: "", wantErr: "nonce does not match"},
		{name: "another client", c: other, raw: l.IDToken, nonce: nonce, wantErr: "invalid audience"},
		{name: "expired", c: c, raw: l.IDToken, nonce: nonce, advance: 24 * time.Hour, wantErr: "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Clock.Advance(tt.advance)
			defer s.Clock.Advance(-tt.advance)
			_, err := tt.c.VerifyIDToken(ctx, tt.raw, tt.nonce)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("VerifyIDToken: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// flip changes the first character of a base64url segment.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// Login.Token keeps the login's token until near expiry, then refreshes
// (DPoP-bound refresh token, rotated); another API's token comes from the
// refresh token with resource.
func TestLoginTokens(t *testing.T) {
	s, c := startLogin(t)
	e := &e2e{srv: s}
	ctx := context.Background()
	l := logIn(t, c)
	first := l.RefreshToken()
	tok, err := l.Token(ctx, "")
	if err != nil || tok != l.First {
		t.Fatalf("Token: %v; a new token while the first is valid", err)
	}
	s.Clock.Advance(time.Duration(l.First.ExpiresIn)*time.Second - 10*time.Second)
	tok, err = l.Token(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if tok == l.First || l.RefreshToken() == first || l.RefreshToken() == "" {
		t.Fatal("no refresh near expiry, or the refresh token was not rotated")
	}
	if at := e.accessClaims(t, c, tok.AccessToken); at["aud"] != "nhn:deft" || at["helseid://claims/identity/pid"] != loginPID {
		t.Errorf("refreshed token aud %v pid %v", at["aud"], at["helseid://claims/identity/pid"])
	}
	kj, err := l.Token(ctx, "nhn:kjernejournal")
	if err != nil {
		t.Fatal(err)
	}
	if at := e.accessClaims(t, c, kj.AccessToken); at["aud"] != "nhn:kjernejournal" || at["helseid://claims/identity/pid"] != loginPID {
		t.Errorf("second API's token aud %v pid %v", at["aud"], at["helseid://claims/identity/pid"])
	}
	if again, err := l.Token(ctx, "nhn:kjernejournal"); err != nil || again != kj {
		t.Errorf("second API's token not kept: %v", err)
	}
}

// A spent refresh token coming back ends the login: the newest refresh
// token of the family is refused too. (The server lets a DPoP-bound token
// be retried within 60 s of its rotation while its successor is unused,
// so the reuse comes later.)
func TestLoginRefreshReuse(t *testing.T) {
	s, c := startLogin(t)
	ctx := context.Background()
	l := logIn(t, c)
	spent := l.RefreshToken()
	if _, err := l.Token(ctx, "nhn:kjernejournal"); err != nil {
		t.Fatal(err)
	}
	s.Clock.Advance(2 * time.Minute)
	var oe *client.Error
	if _, err := c.Refresh(ctx, client.RefreshRequest{RefreshToken: spent, Resource: "nhn:deft"}); !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("reuse: %v, want invalid_grant", err)
	}
	_, err := c.Refresh(ctx, client.RefreshRequest{RefreshToken: l.RefreshToken(), Resource: "nhn:deft"})
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("the newest refresh token after the reuse: %v, want invalid_grant", err)
	}
}

// Login.Transport calls an API with the login's DPoP-bound token for it;
// the API sees the person.
func TestLoginTransport(t *testing.T) {
	s, c := startLogin(t)
	l := logIn(t, c)
	v, err := resource.New(resource.Config{Issuer: s.URL, Audience: "nhn:kjernejournal", Scopes: []string{"nhn:kjernejournal/api"},
		Now: s.Clock.Now, Nonces: resource.NewNonces()})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resource.ClaimsFromContext(r.Context())
		pid := ""
		if claims.Person != nil {
			pid = claims.Person.PID
		}
		json.NewEncoder(w).Encode(map[string]string{"pid": pid})
	})))
	defer api.Close()
	tests := []struct {
		name     string
		resource string
		wantCode int
	}{
		{name: "the API's token", resource: "nhn:kjernejournal", wantCode: http.StatusOK},
		{name: "the login's own token, for another API", resource: "", wantCode: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := (&http.Client{Transport: l.Transport(tt.resource, nil)}).Get(api.URL + "/whoami")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode != http.StatusOK {
				return
			}
			var out map[string]string
			json.NewDecoder(resp.Body).Decode(&out)
			if out["pid"] != loginPID {
				t.Errorf("the API saw pid %q", out["pid"])
			}
		})
	}
}
