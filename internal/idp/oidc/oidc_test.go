package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/idp/oidc"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

const (
	clientID = "tillit-test"
	secret   = "upstream-client-secret"
	pid      = "17056600574" // a valid non-synthetic number, from the test population
)

var (
	now    = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	keyA   = mustRSA()
	keyOld = mustRSA()
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// upstream is an ID-porten-shaped provider on httptest.
type upstream struct {
	srv       *httptest.Server
	mu        sync.Mutex
	published []jose.JSONWebKey // what jwks_uri answers
	jwksHits  atomic.Int32
	// codes maps an issued code to the nonce and PKCE challenge of its
	// authorization request.
	codes map[string][2]string
	// idToken makes the ID token for a code's nonce.
	idToken func(nonce string) string
	// tokenErr, when set, is the token endpoint's error code.
	tokenErr string
	// now is the clock of both the provider and Tillit.
	now time.Time
	// assertionKeys, when set, are the keys registered for Tillit's
	// private_key_jwt client assertions (what `tillit idp jwks` printed),
	// instead of the client secret; assertionKID is the kid of the last
	// assertion that verified.
	assertionKeys *jose.JSONWebKeySet
	assertionKID  string
	// par makes the provider advertise a PAR endpoint; pushed maps its
	// request_uris to the requests pushed; parErr, when set, is its error.
	par    bool
	pushed map[string]url.Values
	parErr string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{codes: map[string][2]string{}, pushed: map[string]url.Values{}, now: now}
	u.published = []jose.JSONWebKey{{Key: keyA.Public(), KeyID: "a", Algorithm: "RS256", Use: "sig"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		m := map[string]string{
			"issuer":                 u.srv.URL,
			"authorization_endpoint": u.srv.URL + "/authorize",
			"token_endpoint":         u.srv.URL + "/token",
			"jwks_uri":               u.srv.URL + "/jwks",
		}
		u.mu.Lock()
		if u.par {
			m["pushed_authorization_request_endpoint"] = u.srv.URL + "/par"
		}
		u.mu.Unlock()
		json.NewEncoder(w).Encode(m)
	})
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fail := func(code string) {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "test upstream says " + code})
		}
		switch {
		case u.parErr != "":
			fail(u.parErr)
		case u.assertionKeys != nil && !u.assertionValid(r):
			fail("invalid_client")
		case u.assertionKeys == nil && (r.PostFormValue("client_id") != clientID || r.PostFormValue("client_secret") != secret):
			fail("invalid_client")
		case r.PostFormValue("request_uri") != "":
			fail("invalid_request")
		default:
			q := url.Values{}
			for k, v := range r.PostForm {
				if !strings.HasPrefix(k, "client_") {
					q[k] = v
				}
			}
			q.Set("client_id", r.PostFormValue("client_id"))
			uri := "urn:ietf:params:oauth:request_uri:" + base64.RawURLEncoding.EncodeToString([]byte(q.Get("state")))[:16]
			u.pushed[uri] = q
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"request_uri": uri, "expires_in": 60})
		}
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		u.jwksHits.Add(1)
		u.mu.Lock()
		defer u.mu.Unlock()
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: u.published})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fail := func(code string) {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "test upstream says " + code})
		}
		c, ok := u.codes[r.PostFormValue("code")]
		delete(u.codes, r.PostFormValue("code"))
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case u.tokenErr != "":
			fail(u.tokenErr)
		case u.assertionKeys != nil && !u.assertionValid(r):
			fail("invalid_client")
		case u.assertionKeys == nil && (r.PostFormValue("client_id") != clientID || r.PostFormValue("client_secret") != secret):
			fail("invalid_client")
		case !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != c[1] || r.PostFormValue("grant_type") != "authorization_code":
			fail("invalid_grant")
		default:
			json.NewEncoder(w).Encode(map[string]string{"id_token": u.idToken(c[0]), "token_type": "Bearer", "access_token": "opaque"})
		}
	})
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) assertionValid(r *http.Request) bool {
	if r.PostFormValue("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || r.PostFormValue("client_secret") != "" {
		return false
	}
	j, err := jose.ParseSigned(r.PostFormValue("client_assertion"), []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil || len(j.Signatures) != 1 {
		return false
	}
	h := j.Signatures[0].Protected
	keys := u.assertionKeys.Key(h.KeyID)
	if len(keys) != 1 || keys[0].Algorithm != h.Algorithm || h.ExtraHeaders["typ"] != "JWT" {
		return false
	}
	b, err := j.Verify(keys[0])
	if err != nil {
		return false
	}
	u.assertionKID = h.KeyID
	var c struct {
		Iss, Sub, Aud, JTI string
		Exp, Iat           int64
	}
	return json.Unmarshal(b, &c) == nil && c.Iss == clientID && c.Sub == clientID && c.Aud == u.srv.URL && c.JTI != "" && c.Exp > c.Iat
}

// authorize plays the person logging in at the provider: it takes the
// authorization URL and returns the callback query.
func (u *upstream) authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	a, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := a.Query()
	if uri := q.Get("request_uri"); uri != "" {
		u.mu.Lock()
		pushed, ok := u.pushed[uri]
		delete(u.pushed, uri)
		u.mu.Unlock()
		if !ok || len(q) != 2 || q.Get("client_id") != clientID {
			t.Fatalf("authorization request %v: not a pushed request's handle", q)
		}
		q = pushed
	} else if u.par {
		t.Fatalf("authorization request %v not pushed to a provider with a PAR endpoint", q)
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("acr_values") != "idporten-loa-high" || q.Get("client_id") != clientID {
		t.Fatalf("authorization request %v", q)
	}
	code := base64.RawURLEncoding.EncodeToString([]byte(q.Get("state")))[:20]
	u.mu.Lock()
	u.codes[code] = [2]string{q.Get("nonce"), q.Get("code_challenge")}
	u.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {u.srv.URL}}
}

// claims are the ID token ID-porten would give for a BankID login.
func (u *upstream) claims(nonce string) map[string]any {
	now := u.now
	return map[string]any{
		"iss": u.srv.URL, "aud": clientID, "sub": "pairwise-sub", "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "auth_time": now.Add(-time.Second).Unix(),
		"pid": pid, "acr": "idporten-loa-high", "amr": []string{"BankID"}, "locale": "nb",
	}
}

func sign(t *testing.T, key any, kid string, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	j, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := j.CompactSerialize()
	return out
}

func newProvider(t *testing.T, u *upstream, st store.Store) *oidc.Provider {
	t.Helper()
	t.Setenv("TILLIT_TEST_UPSTREAM_SECRET", secret)
	p, err := oidc.New(oidc.Config{
		Name: "idporten",
		Settings: store.UpstreamOIDC{
			Issuer: u.srv.URL, ClientID: clientID, ClientSecretEnv: "TILLIT_TEST_UPSTREAM_SECRET",
			Scopes: []string{"openid", "profile"}, ACRValues: []string{"idporten-loa-high"},
			PIDClaim: "pid", AMRClaim: "amr", ACRClaim: "acr",
			GivenNameClaim: "given_name", MiddleNameClaim: "middle_name", FamilyNameClaim: "family_name", NameClaim: "name",
		},
		RedirectURI: "https://sts.example.org/login/callback/idporten",
		States:      st,
		HTTPClient:  u.srv.Client(),
		Now:         func() time.Time { return u.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestLogin(t *testing.T) {
	u := newUpstream(t)
	u.idToken = func(nonce string) string {
		c := u.claims(nonce)
		c["given_name"], c["family_name"], c["name"] = "Kari", "Nordmann", "Kari Nordmann"
		return sign(t, keyA, "a", jose.RS256, c)
	}
	p := newProvider(t, u, openStore(t))
	authURL, err := p.Start(t.Context(), []byte("return-here"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Callback(t.Context(), u.authorize(t, authURL))
	if err != nil {
		t.Fatal(err)
	}
	got := res.Person
	if got.PID != pid || got.SecurityLevel != 4 || !slices.Equal(got.AMR, []string{"BankID"}) || got.IDP != "idporten" ||
		!got.AuthTime.Equal(now.Add(-time.Second)) || string(res.Return) != "return-here" ||
		got.Names != (identity.Names{Given: "Kari", Family: "Nordmann", Full: "Kari Nordmann"}) {
		t.Errorf("person = %+v, return %q", got, res.Return)
	}
}

func TestCallbackForgeries(t *testing.T) {
	other := mustRSA()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	with := func(k string, v any) func(u *upstream, c map[string]any) {
		return func(u *upstream, c map[string]any) {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
	}
	tests := []struct {
		name string
		// claims changes the ID token's claims.
		claims func(u *upstream, c map[string]any)
		// token, when set, makes the whole ID token instead.
		token func(t *testing.T, u *upstream, c map[string]any) string
		// query changes the callback query.
		query    func(q url.Values, u *upstream)
		tokenErr string
		wantErr  error
		wantCode string // of a ProviderError
	}{
		{name: "valid"},
		{name: "iss another provider", claims: with("iss", "https://evil.example.org"), wantErr: oidc.ErrIssuer},
		{name: "aud another client", claims: with("aud", "someone-else"), wantErr: oidc.ErrAudience},
		{name: "aud missing", claims: with("aud", nil), wantErr: oidc.ErrAudience},
		{name: "several audiences without azp", claims: with("aud", []string{clientID, "other"}), wantErr: oidc.ErrAZP},
		{name: "azp another client", claims: with("azp", "other"), wantErr: oidc.ErrAZP},
		{name: "nonce another login's", claims: with("nonce", "bm9uY2U"), wantErr: oidc.ErrNonce},
		{name: "nonce missing", claims: with("nonce", nil), wantErr: oidc.ErrNonce},
		{name: "exp past the leeway", claims: with("exp", now.Add(-2*time.Minute).Unix()), wantErr: oidc.ErrExpired},
		{name: "exp past, within the leeway", claims: with("exp", now.Add(-30*time.Second).Unix())},
		{name: "exp missing", claims: with("exp", nil), wantErr: oidc.ErrExpired},
		{name: "iat in the future", claims: with("iat", now.Add(5*time.Minute).Unix()), wantErr: oidc.ErrIssuedAt},
		{name: "acr substantial, high asked", claims: with("acr", "idporten-loa-substantial"), wantErr: oidc.ErrACR},
		{name: "acr unknown", claims: with("acr", "idporten-loa-low"), wantErr: oidc.ErrACR},
		{name: "acr as a HelseID security_level 4", claims: with("acr", "4")},
		{name: "acr as a HelseID security_level 3, high asked", claims: with("acr", "3"), wantErr: oidc.ErrACR},
		{name: "acr as a number, not a string", claims: with("acr", 4), wantErr: oidc.ErrACR},
		{name: "pid missing", claims: with("pid", nil), wantErr: oidc.ErrPID},
		{name: "pid with a wrong check digit", claims: with("pid", "17056600575"), wantErr: oidc.ErrPID},
		{name: "pid synthetic outside test", claims: with("pid", "13896899906"), wantErr: oidc.ErrPID},
		{name: "signature by another key", token: func(t *testing.T, u *upstream, c map[string]any) string {
			return sign(t, other, "a", jose.RS256, c)
		}, wantErr: oidc.ErrSignature},
		{name: "signature altered", token: func(t *testing.T, u *upstream, c map[string]any) string {
			s := sign(t, keyA, "a", jose.RS256, c)
			return s[:len(s)-4] + "AAAA"
		}, wantErr: oidc.ErrSignature},
		{name: "alg HS256 with the public key as secret", token: func(t *testing.T, u *upstream, c map[string]any) string {
			return sign(t, []byte("0123456789abcdef0123456789abcdef"), "a", jose.HS256, c)
		}, wantErr: oidc.ErrAlgorithm},
		{name: "kid unknown", token: func(t *testing.T, u *upstream, c map[string]any) string {
			return sign(t, ec, "nobody", jose.ES256, c)
		}, wantErr: oidc.ErrUnknownKey},
		{name: "state replayed", query: func(q url.Values, u *upstream) {}, wantErr: oidc.ErrState},
		{name: "state unknown", query: func(q url.Values, u *upstream) { q.Set("state", "bm90LWEtc3RhdGU") }, wantErr: oidc.ErrState},
		{name: "iss of another provider at the callback (RFC 9207)", query: func(q url.Values, u *upstream) { q.Set("iss", "https://evil.example.org") }, wantErr: oidc.ErrIssuer},
		{name: "access denied at the provider", query: func(q url.Values, u *upstream) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "the person canceled")
		}, wantCode: "access_denied"},
		{name: "token endpoint refuses the code", tokenErr: "invalid_grant", wantCode: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t)
			u.tokenErr = tt.tokenErr
			u.idToken = func(nonce string) string {
				c := u.claims(nonce)
				if tt.claims != nil {
					tt.claims(u, c)
				}
				if tt.token != nil {
					return tt.token(t, u, c)
				}
				return sign(t, keyA, "a", jose.RS256, c)
			}
			p := newProvider(t, u, openStore(t))
			authURL, err := p.Start(t.Context(), []byte("ret"))
			if err != nil {
				t.Fatal(err)
			}
			q := u.authorize(t, authURL)
			if tt.name == "state replayed" {
				if _, err := p.Callback(t.Context(), q); err != nil {
					t.Fatalf("first callback: %v", err)
				}
				u.authorize(t, authURL) // the provider would issue a code again
			}
			if tt.query != nil {
				tt.query(q, u)
			}
			res, err := p.Callback(t.Context(), q)
			// Once the state is spent, the caller can answer its request.
			if spent := !errors.Is(err, oidc.ErrState); spent && (res == nil || string(res.Return) != "ret") {
				t.Errorf("result %+v with a spent state, want its Return", res)
			}
			var pe *oidc.ProviderError
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want a ProviderError %s", err, tt.wantCode)
				}
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v, want none", err)
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// An unknown kid refetches the key set once; a kid the provider then
// publishes is accepted, one it does not is refused without another fetch.
func TestUnknownKeyRefetch(t *testing.T) {
	u := newUpstream(t)
	kid := "a"
	key := keyA
	u.idToken = func(nonce string) string { return sign(t, key, kid, jose.RS256, u.claims(nonce)) }
	p := newProvider(t, u, openStore(t))
	login := func() error {
		authURL, err := p.Start(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Callback(t.Context(), u.authorize(t, authURL))
		return err
	}
	if err := login(); err != nil || u.jwksHits.Load() != 1 {
		t.Fatalf("first login: %v, %d key set fetches", err, u.jwksHits.Load())
	}
	// The provider rotates to a new key: one refetch finds it.
	u.mu.Lock()
	u.published = append(u.published, jose.JSONWebKey{Key: keyOld.Public(), KeyID: "b", Algorithm: "RS256", Use: "sig"})
	u.mu.Unlock()
	kid, key = "b", keyOld
	if err := login(); err != nil || u.jwksHits.Load() != 2 {
		t.Fatalf("login with the rotated key: %v, %d key set fetches", err, u.jwksHits.Load())
	}
	// A kid nobody publishes: refused, and within the interval no fetch.
	kid = "forged"
	for range 3 {
		if err := login(); !errors.Is(err, oidc.ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey", err)
		}
	}
	if n := u.jwksHits.Load(); n != 2 {
		t.Errorf("%d key set fetches, want 2: an unknown kid refetched within the interval", n)
	}
	// After the interval, the next unknown kid refetches once more.
	u.mu.Lock()
	u.now = u.now.Add(5 * time.Minute)
	u.mu.Unlock()
	for range 2 {
		if err := login(); !errors.Is(err, oidc.ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey", err)
		}
	}
	if n := u.jwksHits.Load(); n != 3 {
		t.Errorf("%d key set fetches, want 3", n)
	}
}

// Tillit's assertions at the provider are signed with the key it keeps
// sealed in the store, and verify with the key set that `tillit idp jwks`
// prints, by kid; a rotated key signs only from its start, and the
// provider that has registered only the old key refuses it then.
func TestPrivateKeyJWT(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			u := newUpstream(t)
			u.idToken = func(nonce string) string { return sign(t, keyA, "a", jose.RS256, u.claims(nonce)) }
			p, m, st := newKeyProviderAlg(t, u, alg)
			login := func() error {
				authURL, err := p.Start(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				_, err = p.Callback(t.Context(), u.authorize(t, authURL))
				return err
			}
			if err := login(); err != nil {
				t.Fatalf("login with private_key_jwt: %v", err)
			}
			first := u.assertionKeys.Keys[0].KeyID
			if u.assertionKID != first {
				t.Fatalf("assertion kid %q, want the registered %q", u.assertionKID, first)
			}
			// A rotation publishes a second key that signs an hour later.
			next, err := m.RotateUpstreamKey(t.Context(), "idporten", alg, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := login(); err != nil || u.assertionKID != first {
				t.Fatalf("login before the new key's start: %v, kid %q, want %q", err, u.assertionKID, first)
			}
			u.now = u.now.Add(time.Hour)
			var pe *oidc.ProviderError
			if err := login(); !errors.As(err, &pe) || pe.Code != "invalid_client" {
				t.Fatalf("err = %v, want invalid_client from a provider that has only the old key", err)
			}
			u.assertionKeys = printedJWKS(t, st)
			if err := login(); err != nil || u.assertionKID != next.ID {
				t.Fatalf("login with the new key registered: %v, kid %q, want %q", err, u.assertionKID, next.ID)
			}
		})
	}
	t.Run("key not private", func(t *testing.T) {
		u := newUpstream(t)
		p := newProviderWithKey(t, u, func(context.Context) (*jose.JSONWebKey, error) {
			return &jose.JSONWebKey{Key: keyA.Public(), KeyID: "a", Algorithm: "RS256"}, nil
		})
		u.par = true
		if _, err := p.Start(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "is not a private key for RS256, PS256 or ES256") {
			t.Fatalf("err = %v, want the public key refused", err)
		}
	})
	t.Run("no key in the store", func(t *testing.T) {
		u := newUpstream(t)
		u.par = true
		m := newKeys(t, openStore(t), func() time.Time { return u.now })
		p := newProviderWithKey(t, u, func(ctx context.Context) (*jose.JSONWebKey, error) { return m.UpstreamKey(ctx, "idporten") })
		if _, err := p.Start(t.Context(), nil); !errors.Is(err, keys.ErrNoUpstreamKey) {
			t.Fatalf("err = %v, want ErrNoUpstreamKey", err)
		}
	})
}

// A provider that advertises a PAR endpoint gets the request pushed,
// authenticated as at the token endpoint, with either credential, and the
// browser carries only client_id and request_uri.
func TestPAR(t *testing.T) {
	for _, keyAuth := range []bool{false, true} {
		name := map[bool]string{false: "client_secret_post", true: "private_key_jwt"}[keyAuth]
		t.Run(name, func(t *testing.T) {
			u := newUpstream(t)
			u.par = true
			u.idToken = func(nonce string) string { return sign(t, keyA, "a", jose.RS256, u.claims(nonce)) }
			p := newProvider(t, u, openStore(t))
			if keyAuth {
				p = newKeyProvider(t, u)
			}
			authURL, err := p.Start(t.Context(), []byte("ret"))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := url.Parse(authURL)
			if a.Path != "/authorize" || a.Query().Get("state") != "" || a.Query().Get("nonce") != "" {
				t.Fatalf("authorization URL %s carries the request", authURL)
			}
			res, err := p.Callback(t.Context(), u.authorize(t, authURL))
			if err != nil || res.Person.PID != pid {
				t.Fatalf("login through PAR: %+v, %v", res, err)
			}
		})
	}
	t.Run("PAR endpoint refuses", func(t *testing.T) {
		u := newUpstream(t)
		u.par, u.parErr = true, "invalid_request"
		p := newProvider(t, u, openStore(t))
		var pe *oidc.ProviderError
		if _, err := p.Start(t.Context(), nil); !errors.As(err, &pe) || pe.Endpoint != "par" || pe.Code != "invalid_request" {
			t.Fatalf("err = %v, want the provider's invalid_request from par", err)
		}
	})
	t.Run("PAR endpoint refuses the client", func(t *testing.T) {
		u := newUpstream(t)
		u.par = true
		p := newKeyProvider(t, u)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		u.assertionKeys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: other.Public(), KeyID: u.assertionKeys.Keys[0].KeyID, Algorithm: "ES256"}}}
		var pe *oidc.ProviderError
		if _, err := p.Start(t.Context(), nil); !errors.As(err, &pe) || pe.Code != "invalid_client" {
			t.Fatalf("err = %v, want the provider's invalid_client", err)
		}
	})
}

// newKeyProvider is a provider that authenticates with private_key_jwt,
// with an ES256 key of Tillit's own; the upstream has its public key
// registered.
func newKeyProvider(t *testing.T, u *upstream) *oidc.Provider {
	p, _, _ := newKeyProviderAlg(t, u, jose.ES256)
	return p
}

// newKeyProviderAlg makes the provider's key as a server start does, in a
// store sealed with a key-encryption key, and registers at the upstream
// what `tillit idp jwks` prints.
func newKeyProviderAlg(t *testing.T, u *upstream, alg jose.SignatureAlgorithm) (*oidc.Provider, *keys.Manager, store.Store) {
	t.Helper()
	st := openStore(t)
	m := newKeys(t, st, func() time.Time { return u.now })
	if err := m.EnsureUpstreamKey(t.Context(), "idporten", alg); err != nil {
		t.Fatal(err)
	}
	u.assertionKeys = printedJWKS(t, st)
	p := newProviderWithKey(t, u, func(ctx context.Context) (*jose.JSONWebKey, error) { return m.UpstreamKey(ctx, "idporten") })
	return p, m, st
}

func newKeys(t *testing.T, st store.Store, now func() time.Time) *keys.Manager {
	t.Helper()
	kek, err := keys.ParseKEK(keys.NewKEK())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keys.NewManager(t.Context(), st, sealer, keys.Config{Algorithm: jose.ES256}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// printedJWKS is the provider's key set as JSON and back, as an operator
// copies it from `tillit idp jwks` to the provider.
func printedJWKS(t *testing.T, st store.Store) *jose.JSONWebKeySet {
	t.Helper()
	set, err := keys.UpstreamJWKS(t.Context(), st, "idporten", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var out jose.JSONWebKeySet
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func newProviderWithKey(t *testing.T, u *upstream, key func(context.Context) (*jose.JSONWebKey, error)) *oidc.Provider {
	t.Helper()
	p, err := oidc.New(oidc.Config{
		Name: "idporten",
		Settings: store.UpstreamOIDC{
			Issuer: u.srv.URL, ClientID: clientID, Auth: store.UpstreamAuthPrivateKeyJWT,
			Scopes: []string{"openid"}, ACRValues: []string{"idporten-loa-high"}, PIDClaim: "pid", AMRClaim: "amr", ACRClaim: "acr",
		},
		RedirectURI:  "https://sts.example.org/login/callback/idporten",
		States:       openStore(t),
		AssertionKey: key,
		HTTPClient:   u.srv.Client(),
		Now:          func() time.Time { return u.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRefusesBadCredentials(t *testing.T) {
	t.Setenv("TILLIT_TEST_UNSET", "")
	tests := []struct {
		name    string
		set     func(s *store.UpstreamOIDC)
		wantErr string
	}{
		{name: "private_key_jwt without a key", set: func(s *store.UpstreamOIDC) { s.Auth = store.UpstreamAuthPrivateKeyJWT }, wantErr: "private_key_jwt without a key"},
		{name: "secret variable empty", set: func(s *store.UpstreamOIDC) { s.ClientSecretEnv = "TILLIT_TEST_UNSET" }, wantErr: "no client credentials"},
		{name: "no credential", set: func(s *store.UpstreamOIDC) {}, wantErr: "no client credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := store.UpstreamOIDC{Issuer: "https://test.idporten.no", ClientID: clientID}
			tt.set(&s)
			_, err := oidc.New(oidc.Config{Name: "idporten", Settings: s, RedirectURI: "https://sts.example.org/cb", States: openStore(t)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// Discovery that names another issuer is refused (OpenID Connect
// Discovery §4.3), so no login starts.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	u := newUpstream(t)
	p, err := oidc.New(oidc.Config{
		Name:        "idporten",
		Settings:    store.UpstreamOIDC{Issuer: u.srv.URL + "/", ClientID: clientID, ClientSecretFile: writeSecret(t)},
		RedirectURI: "https://sts.example.org/cb", States: openStore(t), HTTPClient: u.srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Start(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "discovery names issuer") {
		t.Fatalf("err = %v, want discovery to fail", err)
	}
}

func writeSecret(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
