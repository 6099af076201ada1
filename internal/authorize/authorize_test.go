package authorize_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/store"
)

func claimsOf(t *testing.T, token string) map[string]any { return jwttest.Claims(t, token) }

// TestLogin is the whole front channel: PAR with DPoP, the authorization
// endpoint through the Login seam, the redirect with code, state and iss,
// and the code redeemed for a DPoP-bound token for one API with the
// person's claims and a refresh token.
func TestLogin(t *testing.T) {
	h := start(t)
	l := h.newLogin("web")
	l.form["resource"] = []string{"test:bearer", "nhn:deft"}
	key := newDPoPKey(t)
	p := h.par(l, key, nil)
	if p.status != http.StatusCreated {
		t.Fatalf("PAR: %d %s", p.status, p.raw)
	}
	uri, _ := p.body["request_uri"].(string)
	if !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || p.body["expires_in"].(float64) < 60 || p.body["expires_in"].(float64) > 90 {
		t.Fatalf("PAR answer %v", p.body)
	}
	u := h.location(h.authorize(url.Values{"client_id": {"web"}, "request_uri": {uri}}))
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://web.example/callback" {
		t.Errorf("redirected to %s", got)
	}
	if q.Get("state") != l.form.Get("state") || q.Get("iss") != h.URL || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	tok := h.redeem(l, "web", q.Get("code"), key, nil)
	if tok.status != http.StatusOK {
		t.Fatalf("token: %d %s", tok.status, tok.raw)
	}
	if tok.body["token_type"] != "DPoP" || tok.body["refresh_token"] == nil || tok.body["rt_expires_in"] == nil {
		t.Errorf("token answer %v", tok.body)
	}
	c := claimsOf(t, tok.body["access_token"].(string))
	// The first resource named at PAR, and that one only.
	if c["aud"] != "test:bearer" {
		t.Errorf("aud = %v, want test:bearer", c["aud"])
	}
	if c["helseid://claims/identity/pid"] != pid || c["sub"] == nil || c["idp"] != "testidp-oidc" {
		t.Errorf("person claims %v", c)
	}
	if cnf, _ := c["cnf"].(map[string]any); cnf == nil || cnf["jkt"] != key.Thumbprint() {
		t.Errorf("cnf = %v", c["cnf"])
	}
	// The refresh token gets the other API.
	form := url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.body["refresh_token"].(string)}, "resource": {"nhn:deft"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {h.assertion("web", nil)},
	}
	r := h.post("/connect/token", form, h.proof(key, "/connect/token"))
	if r.status != http.StatusOK || claimsOf(t, r.body["access_token"].(string))["aud"] != "nhn:deft" {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
}

// TestCodeRedemptionFaults breaks one thing per row of a valid code
// redemption; a refused one spends nothing, so the code still works after.
func TestCodeRedemptionFaults(t *testing.T) {
	h := start(t)
	tests := []struct {
		name     string
		client   string
		key      func(own *dpop.Signer) *dpop.Signer
		form     func(url.Values)
		wantCode string
		wantDesc string
	}{
		{name: "no code_verifier", form: func(f url.Values) { f.Del("code_verifier") }, wantCode: "invalid_request", wantDesc: "code_verifier is missing"},
		{name: "wrong code_verifier", form: func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }, wantCode: "invalid_grant", wantDesc: "code_verifier does not match"},
		{name: "short code_verifier", form: func(f url.Values) { f.Set("code_verifier", "abc") }, wantCode: "invalid_grant", wantDesc: "43 to 128"},
		{name: "no redirect_uri", form: func(f url.Values) { f.Del("redirect_uri") }, wantCode: "invalid_request", wantDesc: "redirect_uri is missing"},
		{name: "other redirect_uri", form: func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1/cb") }, wantCode: "invalid_grant", wantDesc: "redirect_uri is not the one"},
		{name: "unknown code", form: func(f url.Values) { f.Set("code", "AAAA-1") }, wantCode: "invalid_grant", wantDesc: "code is not valid"},
		{name: "another client", client: "other", wantCode: "invalid_grant", wantDesc: "issued to another client"},
		{name: "no DPoP proof", key: func(*dpop.Signer) *dpop.Signer { return nil }, wantCode: "invalid_dpop_proof", wantDesc: "bound to a DPoP key"},
		{name: "another DPoP key", key: func(*dpop.Signer) *dpop.Signer { return newDPoPKey(t) }, wantCode: "invalid_dpop_proof", wantDesc: "not made with the key"},
		{name: "two resources", form: func(f url.Values) { f["resource"] = []string{"nhn:deft", "test:bearer"} }, wantCode: "invalid_target", wantDesc: "name one resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := h.newLogin("web")
			key := newDPoPKey(t)
			code := h.code(l, key)
			client := "web"
			if tt.client != "" {
				client = tt.client
			}
			k := key
			if tt.key != nil {
				k = tt.key(key)
			}
			r := h.redeem(l, client, code, k, tt.form)
			if r.code() != tt.wantCode || !strings.Contains(r.body["error_description"].(string), tt.wantDesc) {
				t.Fatalf("got %d %s, want %s %q", r.status, r.raw, tt.wantCode, tt.wantDesc)
			}
			// Refused: nothing spent, the code still works.
			if ok := h.redeem(l, "web", code, key, nil); ok.status != http.StatusOK {
				t.Fatalf("after a refusal the code no longer works: %d %s", ok.status, ok.raw)
			}
		})
	}
}

// TestCodeReuseRevokesFamily: a code redeemed twice is refused and takes
// back the refresh token the first redemption issued.
func TestCodeReuseRevokesFamily(t *testing.T) {
	h := start(t)
	l := h.newLogin("web")
	key := newDPoPKey(t)
	code := h.code(l, key)
	first := h.redeem(l, "web", code, key, nil)
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	second := h.redeem(l, "web", code, key, nil)
	if second.code() != "invalid_grant" || !strings.Contains(second.raw, "already used") {
		t.Fatalf("second: %d %s", second.status, second.raw)
	}
	form := url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {first.body["refresh_token"].(string)},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {h.assertion("web", nil)},
	}
	r := h.post("/connect/token", form, h.proof(key, "/connect/token"))
	if r.code() != "invalid_grant" || !strings.Contains(r.raw, "revoked") {
		t.Fatalf("refresh after code reuse: %d %s", r.status, r.raw)
	}
}

// TestPARFaults breaks one thing per row of a valid PAR request; each is a
// JSON error, and a refused push leaves the assertion unspent.
func TestPARFaults(t *testing.T) {
	h := start(t)
	now := h.Clock.Now()
	obj := func(mutate func(c map[string]any)) func(url.Values) {
		return func(f url.Values) {
			c := map[string]any{"iss": "web", "aud": h.URL, "client_id": "web", "jti": jws.NewJTI(),
				"nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix(), "state": "from-object"}
			if mutate != nil {
				mutate(c)
			}
			f.Set("request", h.requestObject("web", nil, c))
		}
	}
	tests := []struct {
		name     string
		form     func(url.Values)
		wantCode string
		wantDesc string
	}{
		{name: "response_type token", form: func(f url.Values) { f.Set("response_type", "token") }, wantCode: "unsupported_response_type", wantDesc: "must be code"},
		{name: "no PKCE", form: func(f url.Values) { f.Del("code_challenge"); f.Del("code_challenge_method") }, wantCode: "invalid_request", wantDesc: "PKCE with S256 is required"},
		{name: "plain PKCE", form: func(f url.Values) { f.Set("code_challenge_method", "plain") }, wantCode: "invalid_request", wantDesc: "must be S256"},
		{name: "challenge not a hash", form: func(f url.Values) { f.Set("code_challenge", "short") }, wantCode: "invalid_request", wantDesc: "code_challenge must be"},
		{name: "unregistered redirect_uri", form: func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }, wantCode: "invalid_request", wantDesc: "not registered"},
		{name: "redirect_uri with extra path", form: func(f url.Values) { f.Set("redirect_uri", "https://web.example/callback/x") }, wantCode: "invalid_request", wantDesc: "not registered"},
		{name: "scope not allowed", form: func(f url.Values) { f.Set("scope", "openid e-helse:sfm.api/sfm.api") }, wantCode: "invalid_scope", wantDesc: "not allowed for this client"},
		{name: "no openid", form: func(f url.Values) { f.Set("scope", "nhn:deft/api") }, wantCode: "invalid_scope", wantDesc: "must include openid"},
		{name: "resource of no scope", form: func(f url.Values) { f.Set("scope", "openid nhn:deft/api"); f.Set("resource", "test:bearer") }, wantCode: "invalid_target", wantDesc: "not the API of a scope"},
		{name: "prompt consent", form: func(f url.Values) { f.Set("prompt", "consent") }, wantCode: "invalid_request", wantDesc: "prompt must be"},
		{name: "unknown idp", form: func(f url.Values) { f.Set("acr_values", "idp:nope") }, wantCode: "invalid_request", wantDesc: "not offered"},
		{name: "state twice", form: func(f url.Values) { f.Add("state", "x") }, wantCode: "invalid_request", wantDesc: "more than once"},
		{name: "request_uri at PAR", form: func(f url.Values) { f.Set("request_uri", "urn:x") }, wantCode: "invalid_request", wantDesc: "request_uri is not accepted"},
		{name: "assertion of another client", form: func(f url.Values) { f.Set("client_assertion", h.assertion("other", nil)) }, wantCode: "invalid_client", wantDesc: "client_id does not match"},
		{name: "assertion aud elsewhere", form: func(f url.Values) {
			f.Set("client_assertion", h.assertion("web", func(c map[string]any) { c["aud"] = "https://elsewhere.example" }))
		}, wantCode: "invalid_client"},
		{name: "request object wrong aud", form: obj(func(c map[string]any) { c["aud"] = "https://elsewhere.example" }), wantCode: "invalid_request_object", wantDesc: "aud must be the issuer"},
		{name: "request object expired", form: obj(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }), wantCode: "invalid_request_object", wantDesc: "expired"},
		{name: "request object without exp", form: obj(func(c map[string]any) { delete(c, "exp") }), wantCode: "invalid_request_object", wantDesc: "exp is missing"},
		{name: "request object of another client", form: obj(func(c map[string]any) { c["iss"] = "other" }), wantCode: "invalid_request_object", wantDesc: "iss must be the client_id"},
		{name: "request object bad signature", form: func(f url.Values) {
			c := map[string]any{"iss": "web", "aud": h.URL, "exp": now.Add(30 * time.Second).Unix()}
			f.Set("request", h.requestObject("web", newDPoPKeyRaw(t), c))
		}, wantCode: "invalid_request_object", wantDesc: "signature does not verify"},
		{name: "request object alg none", form: func(f url.Values) {
			c := map[string]any{"iss": "web", "aud": h.URL, "exp": now.Add(30 * time.Second).Unix()}
			f.Set("request", jwtNone(t, c))
		}, wantCode: "invalid_request_object", wantDesc: "allowed algorithms"},
		{name: "request object overrides with a bad redirect", form: obj(func(c map[string]any) { c["redirect_uri"] = "https://evil.example/cb" }), wantCode: "invalid_request", wantDesc: "not registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := h.newLogin("web")
			var assertion string
			r := h.par(l, nil, func(f url.Values) {
				tt.form(f)
				assertion = f.Get("client_assertion")
			})
			if r.status/100 != 4 || r.code() != tt.wantCode || !strings.Contains(r.raw, tt.wantDesc) {
				t.Fatalf("got %d %s, want %s %q", r.status, r.raw, tt.wantCode, tt.wantDesc)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
			if tt.wantCode == "invalid_client" {
				return
			}
			// A refused push spends nothing: the same assertion works.
			ok := h.par(l, nil, func(f url.Values) { f.Set("client_assertion", assertion) })
			if ok.status != http.StatusCreated {
				t.Fatalf("the assertion of a refused push was spent: %d %s", ok.status, ok.raw)
			}
		})
	}
}

// TestRequestObjectWins: a signed request object's parameters win over the
// plain ones, without typ, iat or client_id, as HelseID's web samples send.
func TestRequestObjectWins(t *testing.T) {
	h := start(t)
	now := h.Clock.Now()
	l := h.newLogin("web")
	p := h.par(l, nil, func(f url.Values) {
		f.Set("request", h.requestObject("web", nil, map[string]any{"iss": "web", "aud": h.URL, "jti": jws.NewJTI(),
			"nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix(), "state": "from-object", "test_pid": pid}))
	})
	if p.status != http.StatusCreated {
		t.Fatalf("PAR: %d %s", p.status, p.raw)
	}
	u := h.location(h.authorize(url.Values{"client_id": {"web"}, "request_uri": {p.body["request_uri"].(string)}}))
	if u.Query().Get("state") != "from-object" {
		t.Errorf("state = %q, want the request object's", u.Query().Get("state"))
	}
}

// TestDPoPAtPAR: the PAR proof goes through the nonce round trip, binds
// the code to its key, and dpop_jkt must name the same key.
func TestDPoPAtPAR(t *testing.T) {
	h := start(t)
	key := newDPoPKey(t)
	l := h.newLogin("web")
	noNonce, err := key.Proof(http.MethodPost, h.URL+"/connect/par", dpop.ProofOptions{Now: h.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for k, v := range l.form {
		form[k] = v
	}
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	assertion := h.assertion("web", nil)
	form.Set("client_assertion", assertion)
	r := h.post("/connect/par", form, noNonce)
	if r.code() != "use_dpop_nonce" || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("first push: %d %s", r.status, r.raw)
	}
	other := newDPoPKey(t)
	form.Set("dpop_jkt", other.Thumbprint())
	if r := h.post("/connect/par", form, h.proof(key, "/connect/par")); r.code() != "invalid_dpop_proof" {
		t.Fatalf("dpop_jkt of another key: %d %s", r.status, r.raw)
	}
	form.Set("dpop_jkt", key.Thumbprint())
	// The same assertion again: the refusals spent nothing.
	if r := h.post("/connect/par", form, h.proof(key, "/connect/par")); r.status != http.StatusCreated {
		t.Fatalf("push: %d %s", r.status, r.raw)
	}
}

// TestRequestURI: a request_uri is single use, short-lived and bound to
// its client; any failure is an error page, never a redirect.
func TestRequestURI(t *testing.T) {
	h := start(t)
	push := func() string {
		p := h.par(h.newLogin("web"), nil, nil)
		if p.status != http.StatusCreated {
			t.Fatalf("PAR: %d %s", p.status, p.raw)
		}
		return p.body["request_uri"].(string)
	}
	used := push()
	h.location(h.authorize(url.Values{"client_id": {"web"}, "request_uri": {used}}))
	if r := h.authorize(url.Values{"client_id": {"web"}, "request_uri": {used}}); r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.raw, "already used") {
		t.Fatalf("reused request_uri: %d %q %s", r.status, r.header.Get("Location"), r.raw)
	}
	expired := push()
	h.Clock.Advance(91 * time.Second)
	foreign := push()
	tests := []struct {
		name     string
		query    url.Values
		wantDesc string
	}{
		{name: "expired", query: url.Values{"client_id": {"web"}, "request_uri": {expired}}, wantDesc: "has expired"},
		{name: "another client", query: url.Values{"client_id": {"other"}, "request_uri": {foreign}}, wantDesc: "belongs to another client"},
		{name: "made up", query: url.Values{"client_id": {"web"}, "request_uri": {"urn:ietf:params:oauth:request_uri:x"}}, wantDesc: "is unknown"},
		{name: "no client_id", query: url.Values{"request_uri": {foreign}}, wantDesc: "client_id is missing"},
		{name: "PAR required", query: h.newLogin("web").form, wantDesc: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.authorize(tt.query)
			if tt.name == "PAR required" {
				// The redirect URI is the client's: the error goes there.
				u := h.location(r)
				if u.Query().Get("error") != "invalid_request" || !strings.Contains(u.Query().Get("error_description"), "PAR") {
					t.Fatalf("redirect %s", u)
				}
				return
			}
			if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.raw, tt.wantDesc) {
				t.Fatalf("got %d %q %s, want an error page saying %q", r.status, r.header.Get("Location"), r.raw, tt.wantDesc)
			}
		})
	}
	// The foreign one was left as it was: its own client can still use it.
	h.location(h.authorize(url.Values{"client_id": {"web"}, "request_uri": {foreign}}))
}

// TestPlainAuthorize: a client allowed to skip PAR sends its parameters
// to the authorization endpoint; errors go to its redirect URI only once
// that is known to be the client's (no open redirect).
func TestPlainAuthorize(t *testing.T) {
	h := start(t)
	l := h.newLogin("plain")
	u := h.location(h.authorize(l.form))
	if u.Query().Get("code") == "" || u.Query().Get("state") != l.form.Get("state") || u.Query().Get("iss") != h.URL {
		t.Fatalf("redirect %s", u)
	}
	if r := h.redeem(l, "plain", u.Query().Get("code"), newDPoPKey(t), nil); r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}

	tests := []struct {
		name      string
		change    func(url.Values)
		wantPage  bool
		wantError string
	}{
		{name: "unregistered redirect_uri", change: func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, wantPage: true},
		{name: "redirect_uri of another client", change: func(q url.Values) { q.Set("redirect_uri", "https://web.example/callback") }, wantPage: true},
		{name: "redirect_uri with a query added", change: func(q url.Values) { q.Set("redirect_uri", "https://plain.example/callback?next=https://evil.example") }, wantPage: true},
		{name: "unknown client", change: func(q url.Values) { q.Set("client_id", "nobody") }, wantPage: true},
		{name: "plain PKCE", change: func(q url.Values) { q.Set("code_challenge_method", "plain") }, wantError: "invalid_request"},
		{name: "prompt none", change: func(q url.Values) { q.Set("prompt", "none") }, wantError: "login_required"},
		{name: "response_type token", change: func(q url.Values) { q.Set("response_type", "token") }, wantError: "unsupported_response_type"},
		{name: "user refuses", change: func(q url.Values) { q.Del("test_pid") }, wantError: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range l.form {
				q[k] = v
			}
			tt.change(q)
			r := h.authorize(q)
			if tt.wantPage {
				if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
					t.Fatalf("got %d %q, want an error page", r.status, r.header.Get("Location"))
				}
				return
			}
			u := h.location(r)
			if got := u.Scheme + "://" + u.Host + u.Path; got != "https://plain.example/callback" {
				t.Fatalf("redirected to %s", got)
			}
			if u.Query().Get("error") != tt.wantError || u.Query().Get("state") != l.form.Get("state") || u.Query().Get("iss") != h.URL {
				t.Fatalf("redirect %s, want error %s with state and iss", u, tt.wantError)
			}
		})
	}
}

// TestLoopbackAnyPort: in a test environment a client that opts in may
// use its loopback redirect URI with any port, and nothing else.
func TestLoopbackAnyPort(t *testing.T) {
	h := start(t)
	for _, tc := range []struct {
		uri    string
		wantOK bool
	}{
		{"http://127.0.0.1:53117/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:53117/other", false},
		{"http://localhost:53117/cb", false},
		{"https://127.0.0.1:53117/cb", false},
	} {
		l := h.newLogin("web")
		l.form.Set("redirect_uri", tc.uri)
		r := h.par(l, nil, nil)
		if (r.status == http.StatusCreated) != tc.wantOK {
			t.Errorf("%s: %d %s", tc.uri, r.status, r.raw)
		}
	}
}

// TestCodeRecord: the store holds what the code carries, for a minute: the
// client, and the person the login established.
func TestCodeRecord(t *testing.T) {
	h := start(t)
	l := h.newLogin("web")
	code := h.code(l, nil)
	c, err := h.Store.AuthorizationCode(context.Background(), h.Clock.Now(), store.SecretID(code))
	if err != nil || c.Login.PID != pid || c.ClientID != "web" || c.ExpiresAt.Sub(c.CreatedAt) != time.Minute {
		t.Fatalf("code %+v: %v", c, err)
	}
}

func jwtNone(t *testing.T, c map[string]any) string {
	h, _ := json.Marshal(map[string]any{"alg": "none"})
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}
