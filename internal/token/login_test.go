package token_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// loginRegistry has a client that logs people in to SFM, SFM's own client
// that exchanges their tokens for Reseptformidleren, Reseptformidleren's
// owner, a person and their HPR entry.
const loginRegistry = `
apis:
  - audience: e-helse:sfm.api
    name: SFM
    scopes: [e-helse:sfm.api/sfm.api]
    owners: [sfm-actor]
  - audience: e-helse:reseptformidleren
    name: Reseptformidleren
    scopes: [e-helse:reseptformidleren/rf]
    owners: [rf-owner]
  - audience: test:bearer
    name: Bearer API
    scopes: [test:bearer/read]
    allow_bearer: true
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
  - {number: "310900109", name: SFM}
client_systems:
  - {id: sys, name: Test EPJ, supplier: "310900028"}
  - {id: sfm-sys, name: SFM, supplier: "310900109"}
clients:
  - id: web
    name: EPJ web
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code, refresh_token]
    scopes: [e-helse:sfm.api/sfm.api, test:bearer/read]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/all, helseid://scopes/identity/pid,
      helseid://scopes/identity/security_level, helseid://scopes/hpr/hpr_number, helseid://scopes/hpr]
    redirect_uris: [https://web.example/callback]
    exchange_actors: [sfm-actor]
    jwks: {{jwks "web" "ES256"}}
  - id: sfm-actor
    name: SFM's own client
    system: sfm-sys
    organisation: "310900109"
    grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [e-helse:reseptformidleren/rf]
    jwks: {{jwks "sfm-actor" "ES256"}}
  - id: rf-owner
    name: Reseptformidleren's own client
    system: sfm-sys
    organisation: "310900109"
    scopes: [test:bearer/read]
    jwks: {{jwks "rf-owner" "ES256"}}
identity_providers:
  - {name: testidp-oidc, type: testidp, display_name: TestIDP}
persons:
  - {pid: "17056600574", given_name: KVART, family_name: GREVLING}
hpr:
  - number: "565505933"
    pid: "17056600574"
    approvals:
      - profession: LE
        specialities: [{value: "1", description: Allmennmedisin}]
`

const (
	loginPID    = "17056600574"
	unknownPID  = "13116900216" // valid, but neither in the person register nor HPR
	loginHPR    = "565505933"
	loginSess   = "session-store-id"
	loginNonce  = "n-0S6_WzA2Mj"
	loginAuthAt = 1795996000

	claimPID      = "helseid://claims/identity/pid"
	claimPseudo   = "helseid://claims/identity/pid_pseudonym"
	claimLevel    = "helseid://claims/identity/security_level"
	claimHPR      = "helseid://claims/hpr/hpr_number"
	scopeSFM      = "e-helse:sfm.api/sfm.api"
	webRedirect   = "https://web.example/callback"
	testIdPName   = "testidp-oidc"
	scopePID      = "helseid://scopes/identity/pid"
	scopeLevel    = "helseid://scopes/identity/security_level"
	scopeHPR      = "helseid://scopes/hpr/hpr_number"
	scopeHPROld   = "helseid://scopes/hpr"
	scopeIdentity = "helseid://scopes/identity/all"
)

func startLogin(t testing.TB) *harness {
	return start(t, servertest.Options{Registry: loginRegistry, Settings: "environment: test"})
}

func testLogin(pid string) store.Login {
	return store.Login{Subject: "as the login pages set it", PID: pid, SecurityLevel: "4", AMR: []string{"pwd"},
		AuthTime: time.Unix(loginAuthAt, 0).UTC(), IdP: testIdPName}
}

// loginCode stores the code of a login as the authorization endpoint
// does, changed by mutate, and returns its value and PKCE verifier.
func (h *harness) loginCode(l store.Login, scopes []string, mutate func(*store.AuthorizationCode)) (code, verifier string) {
	h.t.Helper()
	verifier = strings.Repeat("v", 43) + base64.RawURLEncoding.EncodeToString(randomBytes(h.t, 8))
	sum := sha256.Sum256([]byte(verifier))
	code = base64.RawURLEncoding.EncodeToString(randomBytes(h.t, 32))
	now := h.Clock.Now()
	c := store.AuthorizationCode{
		ID: store.SecretID(code), ClientID: "web", RedirectURI: webRedirect,
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]),
		SessionID:     loginSess, Login: l, Scopes: scopes, Nonce: loginNonce,
		CreatedAt: now, ExpiresAt: now.Add(time.Minute),
	}
	if mutate != nil {
		mutate(&c)
	}
	if err := h.Store.CreateAuthorizationCode(h.t.Context(), c); err != nil {
		h.t.Fatal(err)
	}
	return code, verifier
}

func redeemForm(code, verifier string) func(url.Values) {
	return func(f url.Values) {
		f.Set("grant_type", "authorization_code")
		f.Set("code", code)
		f.Set("code_verifier", verifier)
		f.Set("redirect_uri", webRedirect)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyIDToken checks an ID token as a client would: with plain go-jose,
// signed RS256 (the default) by a key of the JWKS the server publishes over
// HTTP, with typ JWT. It returns the token's claims.
func (h *harness) verifyIDToken(raw string) map[string]any {
	h.t.Helper()
	return h.verifyIDTokenAlg(raw, jose.RS256)
}

// verifyIDTokenAlg is verifyIDToken for an ID token that must be signed
// with alg: a header naming another is refused.
func (h *harness) verifyIDTokenAlg(raw string, alg jose.SignatureAlgorithm) map[string]any {
	h.t.Helper()
	tok, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{alg})
	if err != nil {
		h.t.Fatalf("ID token signed with %s: %v", alg, err)
	}
	hdr := tok.Signatures[0].Header
	if typ := hdr.ExtraHeaders[jose.HeaderType]; typ != "JWT" {
		h.t.Errorf("ID token typ %v, want JWT", typ)
	}
	resp, err := http.Get(h.URL + "/.well-known/openid-configuration/jwks")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		h.t.Fatal(err)
	}
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		h.t.Fatalf("ID token kid %q is not in the published JWKS", hdr.KeyID)
	}
	if keys[0].Algorithm != string(alg) {
		h.t.Errorf("ID token key published with alg %s, want %s", keys[0].Algorithm, alg)
	}
	if _, err := tok.Verify(keys[0].Key); err != nil {
		h.t.Fatalf("ID token signature: %v", err)
	}
	return claims(h.t, raw)
}

func (h *harness) sub(pid string) string {
	h.t.Helper()
	s, err := identity.Pseudonym(h.Srv.Keys().PseudonymKey(), pid)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// TestLoginTokens follows a login with openid, profile, the pid, the
// security level and the HPR number through its code: an ID token for the
// client alone with the person's claims and names, an access token with
// the person's claims but not the names, and a refresh that keeps the
// person and issues a new ID token for the same login.
func TestLoginTokens(t *testing.T) {
	h := startLogin(t)
	scopes := []string{"openid", "profile", scopePID, scopeLevel, scopeHPR, "offline_access", scopeSFM, "test:bearer/read"}
	code, verifier := h.loginCode(testLogin(loginPID), scopes, nil)
	key := newP256(t)
	r := h.do(call{client: "web", form: func(f url.Values) {
		redeemForm(code, verifier)(f)
		f.Set("resource", "e-helse:sfm.api")
	}, dpopKey: key})
	if r.status != 200 {
		t.Fatalf("redeem: %d %v", r.status, r.body)
	}
	at, _ := r.body["access_token"].(string)
	raw, _ := r.body["id_token"].(string)
	if raw == "" || r.body["refresh_token"] == nil {
		t.Fatalf("no id_token or refresh_token: %v", r.body)
	}
	sub := h.sub(loginPID)
	if len(sub) != 44 {
		t.Fatalf("sub %q has %d characters, want 44", sub, len(sub))
	}
	sid := idtoken.SID(loginSess)
	if len(sid) != 32 || strings.ToUpper(sid) != sid || strings.Contains(sid, loginSess) {
		t.Fatalf("sid %q: want 32 upper-case hex digits derived from the session", sid)
	}
	athash, err := idtoken.ATHash(jose.RS256, at)
	if err != nil {
		t.Fatal(err)
	}

	id := h.verifyIDToken(raw)
	now := h.Clock.Now().Unix()
	want := map[string]any{
		"iss": h.URL, "aud": "web", "nonce": loginNonce, "at_hash": athash, "sid": sid, "sub": sub,
		"auth_time": float64(loginAuthAt), "idp": testIdPName, "nbf": float64(now), "iat": float64(now),
		"exp":    float64(now + int64(idtoken.DefaultLifetime/time.Second)),
		claimPID: loginPID, claimLevel: "4", claimHPR: loginHPR,
		"name": "KVART GREVLING", "given_name": "KVART", "middle_name": "", "family_name": "GREVLING",
	}
	for k, v := range want {
		if id[k] != v {
			t.Errorf("ID token %s = %v, want %v", k, id[k], v)
		}
	}
	if amr, _ := id["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Errorf("ID token amr = %v, want [pwd]", id["amr"])
	}
	for _, k := range []string{claimPseudo, "scope", "client_id", "cnf"} {
		if _, ok := id[k]; ok {
			t.Errorf("ID token has %s, which no scope asked for or which belongs in access tokens", k)
		}
	}

	ac := claims(t, at)
	for k, v := range map[string]any{"sub": sub, "sid": sid, claimPID: loginPID, claimLevel: "4", claimHPR: loginHPR,
		"idp": testIdPName, "auth_time": float64(loginAuthAt), "aud": "e-helse:sfm.api"} {
		if ac[k] != v {
			t.Errorf("access token %s = %v, want %v", k, ac[k], v)
		}
	}
	for _, k := range []string{"name", "given_name", "family_name", "nonce", "at_hash"} {
		if _, ok := ac[k]; ok {
			t.Errorf("access token has %s", k)
		}
	}

	// A refresh keeps the person and issues an ID token of the same login
	// (OpenID Connect Core §12.2): same sub, auth_time and sid, no nonce,
	// at_hash of the new access token.
	h.Clock.Advance(time.Minute)
	rr := h.do(call{client: "web", form: func(f url.Values) {
		f.Set("grant_type", "refresh_token")
		f.Set("refresh_token", r.body["refresh_token"].(string))
		f.Set("resource", "test:bearer")
	}, dpopKey: key})
	if rr.status != 200 {
		t.Fatalf("refresh: %d %v", rr.status, rr.body)
	}
	rawRefreshed, _ := rr.body["id_token"].(string)
	if rawRefreshed == "" {
		t.Fatalf("a refresh of a login with openid issued no ID token: %v", rr.body)
	}
	rid := h.verifyIDToken(rawRefreshed)
	rathash, err := idtoken.ATHash(jose.RS256, rr.body["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	now = h.Clock.Now().Unix()
	for k, v := range want {
		switch k {
		case "nonce":
			continue
		case "at_hash":
			v = rathash
		case "nbf", "iat":
			v = float64(now)
		case "exp":
			v = float64(now + int64(idtoken.DefaultLifetime/time.Second))
		}
		if rid[k] != v {
			t.Errorf("refreshed ID token %s = %v, want %v", k, rid[k], v)
		}
	}
	if _, ok := rid["nonce"]; ok {
		t.Error("refreshed ID token has a nonce")
	}
	rc := claims(t, rr.body["access_token"].(string))
	for _, k := range []string{"sub", "sid", claimPID, claimLevel, claimHPR, "idp", "auth_time"} {
		if rc[k] != ac[k] {
			t.Errorf("refreshed access token %s = %v, want %v", k, rc[k], ac[k])
		}
	}
	if rc["aud"] != "test:bearer" {
		t.Errorf("refreshed aud = %v", rc["aud"])
	}
}

// TestLoginClaimsByScope: what the scopes and the registers decide, one
// change per row from a login with openid and an API scope.
func TestLoginClaimsByScope(t *testing.T) {
	h := startLogin(t)
	absent := "(absent)"
	tests := []struct {
		name   string
		pid    string
		hpr    string // the login's own HPR number (TestIDP's test_hpr_number)
		scopes []string
		// want are claims of the ID token ("" key: no ID token) and the
		// access token, absent meaning left out.
		wantID, wantAT map[string]string
	}{
		{name: "openid only", pid: loginPID, scopes: []string{"openid", scopeSFM},
			wantID: map[string]string{"sub": h.sub(loginPID), "name": absent, claimPID: absent, claimHPR: absent},
			wantAT: map[string]string{"sub": h.sub(loginPID), claimPID: absent}},
		{name: "no openid: no ID token", pid: loginPID, scopes: []string{scopePID, scopeSFM},
			wantID: nil,
			wantAT: map[string]string{"sub": h.sub(loginPID), claimPID: loginPID}},
		{name: "profile names from the register", pid: loginPID, scopes: []string{"openid", "profile", scopeSFM},
			wantID: map[string]string{"name": "KVART GREVLING", "family_name": "GREVLING"},
			wantAT: map[string]string{"name": absent}},
		{name: "profile, person not in the register", pid: unknownPID, scopes: []string{"openid", "profile", scopeSFM},
			wantID: map[string]string{"sub": h.sub(unknownPID), "name": absent, "given_name": absent},
			wantAT: map[string]string{"sub": h.sub(unknownPID)}},
		{name: "HPR number from the register", pid: loginPID, scopes: []string{"openid", scopeHPR, scopeSFM},
			wantID: map[string]string{claimHPR: loginHPR},
			wantAT: map[string]string{claimHPR: loginHPR}},
		{name: "HPR number by the old scope", pid: loginPID, scopes: []string{"openid", scopeHPROld, scopeSFM},
			wantID: map[string]string{claimHPR: loginHPR},
			wantAT: map[string]string{claimHPR: loginHPR}},
		{name: "the login's HPR number wins", pid: loginPID, hpr: "1234", scopes: []string{"openid", scopeHPR, scopeSFM},
			wantID: map[string]string{claimHPR: "1234"},
			wantAT: map[string]string{claimHPR: "1234"}},
		{name: "no HPR scope: no HPR number", pid: loginPID, hpr: "1234", scopes: []string{"openid", scopePID, scopeSFM},
			wantID: map[string]string{claimHPR: absent, claimPID: loginPID},
			wantAT: map[string]string{claimHPR: absent, claimPID: loginPID}},
		{name: "not in HPR", pid: unknownPID, scopes: []string{"openid", scopeHPR, scopeSFM},
			wantID: map[string]string{claimHPR: absent},
			wantAT: map[string]string{claimHPR: absent}},
		{name: "identity/all", pid: loginPID, scopes: []string{"openid", scopeIdentity, scopeSFM},
			wantID: map[string]string{claimPID: loginPID, claimPseudo: h.sub(loginPID), claimLevel: "4",
				"helseid://claims/identity/assurance_level": "high", "helseid://claims/identity/network": "internett", claimHPR: absent},
			wantAT: map[string]string{claimPID: loginPID, claimPseudo: h.sub(loginPID)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLogin(tt.pid)
			l.HPRNumber = tt.hpr
			code, verifier := h.loginCode(l, tt.scopes, nil)
			r := h.do(call{client: "web", form: redeemForm(code, verifier)})
			if r.status != 200 {
				t.Fatalf("redeem: %d %v", r.status, r.body)
			}
			raw, ok := r.body["id_token"].(string)
			if tt.wantID == nil {
				if ok {
					t.Fatal("an ID token without openid")
				}
			} else {
				if !ok {
					t.Fatalf("no ID token: %v", r.body)
				}
				check(t, "ID token", h.verifyIDToken(raw), tt.wantID, absent)
			}
			check(t, "access token", claims(t, r.body["access_token"].(string)), tt.wantAT, absent)
		})
	}
}

func check(t *testing.T, what string, got map[string]any, want map[string]string, absent string) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v == absent && ok:
			t.Errorf("%s has %s = %v, want none", what, k, g)
		case v != absent && g != v:
			t.Errorf("%s %s = %v, want %s", what, k, g, v)
		}
	}
}

// TestExchangeKeepsThePerson: SFM exchanges a person's token for
// Reseptformidleren, which learns who the doctor is, and introspection
// says so to Reseptformidleren's owner.
func TestExchangeKeepsThePerson(t *testing.T) {
	h := startLogin(t)
	code, verifier := h.loginCode(testLogin(loginPID), []string{"openid", scopePID, scopeHPR, scopeSFM}, nil)
	r := h.do(call{client: "web", form: redeemForm(code, verifier)})
	if r.status != 200 {
		t.Fatalf("redeem: %d %v", r.status, r.body)
	}
	subject := r.body["access_token"].(string)
	te := h.token(call{client: "sfm-actor", form: exchange(subject, "e-helse:reseptformidleren/rf")})
	sc, tc := claims(t, subject), claims(t, te)
	for _, k := range []string{"sub", "sid", claimPID, claimHPR, "idp", "auth_time"} {
		if tc[k] == nil || tc[k] != sc[k] {
			t.Errorf("exchanged token %s = %v, want the subject's %v", k, tc[k], sc[k])
		}
	}
	if tc["aud"] != "e-helse:reseptformidleren" || tc["client_id"] != "sfm-actor" || tc[originalClientID] != "web" {
		t.Errorf("exchanged token aud %v client_id %v original %v", tc["aud"], tc["client_id"], tc[originalClientID])
	}
	if _, ok := tc["amr"].([]any); !ok {
		t.Errorf("exchanged token amr = %v", tc["amr"])
	}

	in := h.post(token.IntrospectionPath, endpointCall{client: "rf-owner", form: tokenParam(te)})
	if in.status != 200 || in.body["active"] != true {
		t.Fatalf("introspection: %d %v", in.status, in.body)
	}
	for _, k := range []string{"sub", claimPID, claimHPR, "idp"} {
		if in.body[k] != tc[k] {
			t.Errorf("introspection %s = %v, want %v", k, in.body[k], tc[k])
		}
	}
	if act, _ := in.body["act"].(map[string]any); act["client_id"] != "sfm-actor" {
		t.Errorf("introspection act = %v", in.body["act"])
	}
	if in.body["token_type"] != "DPoP" {
		t.Errorf("introspection token_type = %v", in.body["token_type"])
	}
}
