package login_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/store"
)

// fakeIDPorten is an upstream provider on httptest that answers as
// ID-porten does: a BankID login at idporten-loa-high. It checks the
// client secret and PKCE only as far as the test needs (the provider
// package's own tests forge each fault).
type fakeIDPorten struct {
	srv   *httptest.Server
	key   *ecdsa.PrivateKey
	now   func() time.Time
	mu    sync.Mutex
	codes map[string]string // code → nonce
}

func newFakeIDPorten(t *testing.T, now func() time.Time) *fakeIDPorten {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIDPorten{key: k, now: now, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/authorize",
			"token_endpoint": f.srv.URL + "/token", "jwks_uri": f.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: "idp", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		nonce, ok := f.codes[r.PostFormValue("code")]
		delete(f.codes, r.PostFormValue("code"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.PostFormValue("client_secret") != "upstream-secret" || r.PostFormValue("code_verifier") == "" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "idp"}}, nil)
		b, _ := json.Marshal(map[string]any{"iss": f.srv.URL, "aud": "tillit", "sub": "x", "nonce": nonce,
			"iat": f.now().Unix(), "exp": f.now().Add(time.Minute).Unix(), "pid": pid, "acr": "idporten-loa-high", "amr": []string{"BankID"},
			"given_name": "Kari", "family_name": "Nordmann"})
		j, _ := s.Sign(b)
		tok, _ := j.CompactSerialize()
		json.NewEncoder(w).Encode(map[string]string{"id_token": tok, "access_token": "opaque", "token_type": "Bearer"})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// login plays the person at the provider: it takes the authorization
// request Tillit sent the browser to and returns the callback query.
func (f *fakeIDPorten) login(t *testing.T, to *url.URL) url.Values {
	t.Helper()
	q := to.Query()
	if to.Host != strings.TrimPrefix(f.srv.URL, "http://") || q.Get("acr_values") != "idporten-loa-high" || q.Get("code_challenge_method") != "S256" {
		t.Fatalf("sent to %s", to)
	}
	code := "code-" + q.Get("state")[:12]
	f.mu.Lock()
	f.codes[code] = q.Get("nonce")
	f.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {f.srv.URL}}
}

func startWithIDPorten(t *testing.T) (*harness, *fakeIDPorten) {
	t.Setenv("TILLIT_TEST_UPSTREAM_SECRET", "upstream-secret")
	var h *harness
	f := newFakeIDPorten(t, func() time.Time { return h.Clock.Now() })
	reg := strings.Replace(testRegistry, "%s", "", 1)
	reg = strings.Replace(reg, "  - {name: testidpnew-oidc, type: testidp, display_name: TestIDP ny}\n",
		"  - {name: idporten, type: oidc, display_name: ID-porten, issuer: \""+f.srv.URL+"\", client_id: tillit,"+
			" client_secret_env: TILLIT_TEST_UPSTREAM_SECRET, acr_values: [idporten-loa-high],"+
			" given_name_claim: given_name, family_name_claim: family_name}\n", 1)
	h = start(t, options{registry: reg})
	return h, f
}

// A person logs in at the upstream provider through the choice page, and
// the client gets a code for a level-4 BankID login with the names the
// provider gave; the callback cannot be replayed.
func TestUpstreamLogin(t *testing.T) {
	h, f := startWithIDPorten(t)
	b := h.browser()
	r := h.request("web", nil)
	choice := b.get(h.authorizeURL(r, nil))
	// Browsers apply form-action to the redirect after the choice is
	// posted: it must allow the provider's authorization endpoint.
	if csp := choice.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://web.example "+f.srv.URL+";") {
		t.Errorf("choice page CSP %q does not allow the provider %s", csp, f.srv.URL)
	}
	form := formOf(t, choice)
	form.Set("idp", "idporten")
	to := b.post("/login/idp", form).location(t)
	callback := "/login/callback/idporten?" + f.login(t, to).Encode()
	u := b.get(callback).onward(t)
	if u.Host != "web.example" {
		t.Fatalf("redirect %s", u)
	}
	c := h.code(u)
	if c.Login.PID != pid || c.Login.SecurityLevel != "4" || c.Login.IdP != "idporten" || !slices.Equal(c.Login.AMR, []string{"BankID"}) ||
		c.Login.HPRNumber != hpr || c.Login.Names != (store.Names{Given: "Kari", Family: "Nordmann"}) {
		t.Errorf("login = %+v", c.Login)
	}
	if a := b.get(callback); a.status != http.StatusBadRequest {
		t.Errorf("replayed callback: status %d", a.status)
	}
}

// The person cancels at the provider: the client gets access_denied.
func TestUpstreamCanceled(t *testing.T) {
	h, f := startWithIDPorten(t)
	b := h.browser()
	r := h.request("web", func(v url.Values) { v.Set("acr_values", "idp:idporten") })
	to := b.get(h.authorizeURL(r, nil)).location(t)
	q := f.login(t, to)
	q.Del("code")
	q.Set("error", "access_denied")
	u := b.get("/login/callback/idporten?" + q.Encode()).onward(t)
	if u.Host != "web.example" || u.Query().Get("error") != "access_denied" || !strings.Contains(u.Query().Get("error_description"), "canceled") {
		t.Fatalf("redirect %s", u)
	}
	if a := b.get("/login/callback/nobody?" + q.Encode()); a.status != http.StatusNotFound {
		t.Errorf("callback of an unknown provider: status %d", a.status)
	}
}
