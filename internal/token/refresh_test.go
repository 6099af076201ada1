package token_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// login is the grant of the refresh tokens these tests start from: a user
// logged in with identity scopes, offline_access and the scopes of two APIs
// (profile §4.5).
var login = token.RefreshGrant{
	Scopes: []string{"openid", "offline_access", "helseid://scopes/identity/pid", "nhn:deft/api", "test:bearer/read"},
	Identity: token.Identity{
		Subject: exampleIdentityID, PID: "17056600574", SecurityLevel: "4", IDP: "testidp-oidc", AMR: []string{"pwd"},
	},
}

// refresh is the form of a refresh request.
func refresh(rt string, edit func(url.Values)) func(url.Values) {
	return func(f url.Values) {
		f.Set("grant_type", "refresh_token")
		f.Set("refresh_token", rt)
		if edit != nil {
			edit(f)
		}
	}
}

func withResource(aud string) func(url.Values) {
	return func(f url.Values) { f.Set("resource", aud) }
}

// TestRefreshForgeOneFault starts from a valid refresh for nhn:deft with the
// DPoP key the refresh token is bound to, and breaks one thing per row.
func TestRefreshForgeOneFault(t *testing.T) {
	h := start(t)
	key := newP256(t)
	jkt := thumbprint(t, key)
	rt := h.RefreshToken(t, "refresh-client", jkt, login)
	otherClients := h.RefreshToken(t, "multi-client", jkt, login)
	revoked := h.RefreshToken(t, "refresh-client", jkt, login)
	if _, err := h.Store.RevokeRefreshFamily(t.Context(), familyOf(t, h, revoked)); err != nil {
		t.Fatal(err)
	}
	sfmLogin := login
	sfmLogin.Scopes = []string{"openid", "offline_access", "e-helse:sfm.api/sfm.api"}
	notAllowed := h.RefreshToken(t, "refresh-client", jkt, sfmLogin)
	deftLogin := login
	deftLogin.Resources = []string{"nhn:deft"}
	oneResource := h.RefreshToken(t, "refresh-client", jkt, deftLogin)
	deft := withResource("nhn:deft")

	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		{"no refresh_token", call{form: refresh("", deft)}, 400, "invalid_request", "refresh_token is missing"},
		{"unknown refresh_token", call{form: refresh(token.NewRefreshTokenValue(), deft)}, 400, "invalid_grant", "refresh_token is not valid"},
		{"refresh_token of another client", call{form: refresh(otherClients, deft)}, 400, "invalid_grant", "issued to another client"},
		{"presented by a client without the grant", call{client: "deft-client", form: refresh(rt, deft)}, 400, "unauthorized_client", "refresh_token"},
		{"revoked refresh_token", call{form: refresh(revoked, deft)}, 400, "invalid_grant", "has been revoked"},
		{"no DPoP proof for a bound refresh_token", call{noDPoP: true, form: refresh(rt, deft)}, 400, "invalid_grant", "bound to a DPoP key"},
		{"DPoP proof with another key", call{dpopKey: newP256(t), form: refresh(rt, deft)}, 400, "invalid_grant", "not made with the key the refresh_token is bound to"},
		{"scope not granted", call{form: refresh(rt, func(f url.Values) { f.Set("scope", "nhn:deft/api e-helse:sfm.api/sfm.api") })}, 400, "invalid_scope", "was not granted"},
		{"scope no longer allowed for the client", call{form: refresh(notAllowed, func(f url.Values) { f.Set("scope", "e-helse:sfm.api/sfm.api") })}, 400, "invalid_scope", "not allowed for this client"},
		{"only scopes the client no longer has", call{form: refresh(notAllowed, nil)}, 400, "invalid_scope", "no API scopes this client may still have"},
		{"resource the login granted no scopes for", call{form: refresh(rt, withResource(servertest.SFMAudience))}, 400, "invalid_target", "the client has no scopes for e-helse:sfm.api"},
		{"only identity scopes", call{form: refresh(rt, func(f url.Values) { f.Set("scope", "openid") })}, 400, "invalid_scope", "name at least one API scope"},
		{"no resource for a login with two APIs", call{form: refresh(rt, nil)}, 400, "invalid_target", "granted scopes for several APIs"},
		{"scopes of two APIs", call{form: refresh(rt, func(f url.Values) { f.Set("scope", "nhn:deft/api test:bearer/read") })}, 400, "invalid_target", "several APIs"},
		{"two resources", call{form: refresh(rt, func(f url.Values) { f["resource"] = []string{"nhn:deft", "test:bearer"} })}, 400, "invalid_target", "name one resource"},
		{"resource not named at login", call{form: refresh(oneResource, withResource("test:bearer"))}, 400, "invalid_target", "was not named at login"},
		{"unknown resource", call{form: refresh(rt, withResource("nhn:unknown"))}, 400, "invalid_target", "not a known API"},
		{"scope and resource disagree", call{form: refresh(rt, func(f url.Values) { f.Set("scope", "nhn:deft/api"); f.Set("resource", "test:bearer") })}, 400, "invalid_target", "not a scope of resource"},
		{"child organisation not on the list", call{assertion: details(childDetail(servertest.OtherChild)), form: refresh(rt, deft)}, 400, "invalid_request", "HID-1002"},
		{"both details claims", call{assertion: func(h, c map[string]any) {
			c["assertion_details"] = childDetail(servertest.Child)
			c["authorization_details"] = childDetail(servertest.Child)
		}, form: refresh(rt, deft)}, 400, "invalid_request", "both assertion_details and authorization_details"},
		{"multi-tenant switch to an organisation without a delegation", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Customer)), form: refresh(otherClients, deft)}, 400, "invalid_request", "has not delegated"},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			if tt.call.client == "" {
				tt.call.client = "refresh-client"
			}
			if tt.call.dpopKey == nil {
				tt.call.dpopKey = key
			}
			r := h.do(tt.call)
			fmt.Fprintf(&golden, "%s\n\t%d %s: %s\n", tt.name, r.status, r.code(), r.description())
			if r.status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code(), r.description(), tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("error_description %q does not say %q", r.description(), tt.wantDesc)
			}
			if _, ok := r.body["refresh_token"]; ok {
				t.Fatal("an error response carries a refresh token")
			}
		})
	}
	checkGolden(t, "testdata/refresh.golden", golden.String())

	// None of the refusals spent the refresh token.
	h.t = t
	if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, deft)}); r.status != 200 {
		t.Fatalf("the refresh token after the refusals: %d %v", r.status, r.body)
	}
}

func familyOf(t *testing.T, h *harness, rt string) string {
	t.Helper()
	stored, err := h.Store.RefreshToken(t.Context(), token.RefreshTokenID(rt))
	if err != nil {
		t.Fatal(err)
	}
	return stored.FamilyID
}

// TestRefreshOneTokenPerAPI is profile §4.5: one login, then one
// single-audience token per API, each refresh rotating the refresh token,
// whose absolute lifetime never grows.
func TestRefreshOneTokenPerAPI(t *testing.T) {
	h := start(t)
	key := newP256(t)
	rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	first := rt

	steps := []struct {
		name      string
		advance   time.Duration
		form      func(url.Values)
		wantAud   string
		wantScope string
		wantRTExp float64
	}{
		{"DEFT", 0, withResource("nhn:deft"), "nhn:deft", "openid offline_access helseid://scopes/identity/pid nhn:deft/api", 7200},
		{"the Bearer API, an hour later", time.Hour, withResource("test:bearer"), "test:bearer", "openid offline_access helseid://scopes/identity/pid test:bearer/read", 3600},
		{"DEFT again, narrowed to its scope", 30 * time.Minute, func(f url.Values) { f.Set("scope", "nhn:deft/api") }, "nhn:deft", "nhn:deft/api", 1800},
	}
	for _, s := range steps {
		h.Clock.Advance(s.advance)
		r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, s.form)})
		if r.status != 200 {
			t.Fatalf("%s: %d %v", s.name, r.status, r.body)
		}
		if r.body["scope"] != s.wantScope || r.body["rt_expires_in"] != s.wantRTExp || r.body["token_type"] != "DPoP" {
			t.Errorf("%s: response %v", s.name, r.body)
		}
		next, _ := r.body["refresh_token"].(string)
		if len(next) != 43 || next == rt {
			t.Fatalf("%s: refresh_token %q, want a new 256-bit value", s.name, next)
		}
		rt = next
		_, c := verify(t, h, r.body["access_token"].(string))
		if c["aud"] != s.wantAud || c["client_id"] != "refresh-client" || c["sub"] != exampleIdentityID ||
			c["helseid://claims/identity/pid"] != "17056600574" || c["idp"] != "testidp-oidc" {
			t.Errorf("%s: claims %v", s.name, c)
		}
		if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != thumbprint(t, key) {
			t.Errorf("%s: cnf %v", s.name, c["cnf"])
		}
	}

	// The family expires two hours after the login, whatever the rotations.
	h.Clock.Advance(30 * time.Minute)
	r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))})
	if r.code() != "invalid_grant" || r.description() != "refresh_token has expired" {
		t.Fatalf("after the absolute lifetime: %d %v", r.status, r.body)
	}
	if stored, err := h.Store.RefreshToken(t.Context(), token.RefreshTokenID(first)); err != nil || stored.ClientID != "refresh-client" {
		t.Errorf("first refresh token as stored: %+v, %v", stored, err)
	} else if strings.Contains(string(stored.ID), first) {
		t.Error("the store holds the refresh token's value")
	}
}

// TestRefreshReuseRevokesFamily: a rotated refresh token used again revokes
// every token of its login, the newest included (RFC 9700 §4.14.2).
func TestRefreshReuseRevokesFamily(t *testing.T) {
	h := start(t)
	key := newP256(t)
	first := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	other := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login) // another login
	r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(first, withResource("nhn:deft"))})
	if r.status != 200 {
		t.Fatalf("first refresh: %d %v", r.status, r.body)
	}
	second := r.body["refresh_token"].(string)

	// Past the retry grace (TestRefreshRetryAfterUnknownOutcome).
	h.Clock.Advance(store.RefreshRetryGrace)
	r = h.do(call{client: "refresh-client", dpopKey: key, form: refresh(first, withResource("nhn:deft"))})
	if r.code() != "invalid_grant" || !strings.Contains(r.description(), "already used") {
		t.Fatalf("reuse: %d %v", r.status, r.body)
	}
	r = h.do(call{client: "refresh-client", dpopKey: key, form: refresh(second, withResource("nhn:deft"))})
	if r.code() != "invalid_grant" || r.description() != "refresh_token has been revoked" {
		t.Fatalf("the newest token after the reuse: %d %v", r.status, r.body)
	}
	if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(other, withResource("nhn:deft"))}); r.status != 200 {
		t.Fatalf("another login's token after the reuse: %d %v", r.status, r.body)
	}
}

// TestConcurrentRefresh: many requests with one refresh token at once get
// one token, or two when the first loser comes within the retry grace
// (TestRefreshRetryAfterUnknownOutcome). The others count as reuse, so the
// family is revoked (RFC 9700 §4.14.2 cannot tell a racing client from a
// thief).
func TestConcurrentRefresh(t *testing.T) {
	h := start(t)
	key := newP256(t)
	rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	const n = 20
	type req struct{ assertion, proof string }
	reqs := make([]req, n)
	for i := range reqs {
		reqs[i] = req{h.assertion("refresh-client", nil), h.proof(key, nil)}
	}
	var wg sync.WaitGroup
	results := make(chan map[string]any, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{
				"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {"nhn:deft"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {reqs[i].assertion},
			}
			hr, _ := http.NewRequest("POST", h.tokenURL(), strings.NewReader(form.Encode()))
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			hr.Header.Set("DPoP", reqs[i].proof)
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Errorf("%d %s", resp.StatusCode, raw)
				return
			}
			results <- body
		}()
	}
	wg.Wait()
	h.checkSettled(t)
	close(results)
	wins := 0
	for body := range results {
		switch {
		case body["access_token"] != nil && body["refresh_token"] != nil:
			wins++
		case body["error"] == "invalid_grant":
		default:
			t.Errorf("unexpected answer %v", body)
		}
	}
	if wins < 1 || wins > 2 {
		t.Fatalf("%d of %d concurrent refreshes succeeded, want 1, or 2 with the retry grace", wins, n)
	}
	if stored, err := h.Store.RefreshToken(t.Context(), token.RefreshTokenID(rt)); err != nil || stored.Status != store.RefreshRevoked {
		t.Fatalf("the family after concurrent reuse: %+v, %v; want revoked", stored, err)
	}
}

// TestRefreshOrganisation: without assertion_details a refresh acts for the
// organisation of the login; a new assertion may switch to another the
// client may act for (profile §4.4), and rejected_scope works as for
// client_credentials.
func TestRefreshOrganization(t *testing.T) {
	h := start(t)
	key := newP256(t)
	jkt := thumbprint(t, key)
	multiLogin := login
	multiLogin.OrgNrParent = servertest.Tenant
	rt := h.RefreshToken(t, "multi-client", jkt, multiLogin)
	tests := []struct {
		name         string
		value        string // NO:ORGNR:..., empty for none
		form         func(url.Values)
		wantParent   string
		wantAud      string
		wantRejected string
	}{
		{"the login's organisation", "", withResource("nhn:deft"), servertest.Tenant, "nhn:deft", ""},
		{"switched to another organisation", "NO:ORGNR:" + servertest.TenantAll, withResource("test:bearer"), servertest.TenantAll, "test:bearer", ""},
		{"the login's organisation, scopes of an API it has not accepted rejected", "", nil, servertest.Tenant, "nhn:deft", "test:bearer/read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			c := call{client: "multi-client", dpopKey: key, form: refresh(rt, tt.form)}
			if tt.value != "" {
				c.assertion = details(multiDetail(tt.value))
			}
			r := h.do(c)
			if r.status != 200 {
				t.Fatalf("status %d: %v", r.status, r.body)
			}
			rt = r.body["refresh_token"].(string)
			if got, _ := r.body["rejected_scope"].(string); got != tt.wantRejected {
				t.Errorf("rejected_scope %q, want %q", got, tt.wantRejected)
			}
			_, cl := verify(t, h, r.body["access_token"].(string))
			if cl[orgNrParentClaim] != tt.wantParent || cl["aud"] != tt.wantAud || cl["helseid://claims/client/client_tenancy"] != "multi-tenant" {
				t.Errorf("claims %v", cl)
			}
		})
	}
	h.t = t
	r := h.do(call{client: "multi-client", dpopKey: key, form: refresh(rt, withResource("test:bearer"))})
	if r.code() != "invalid_scope" || !strings.Contains(r.description(), "has not accepted the terms of use of test:bearer") {
		t.Fatalf("only scopes of an API the login's organisation has not accepted: %d %v", r.status, r.body)
	}
}

// TestRefreshUnbound: a refresh token issued without DPoP is used without
// it, for an API that accepts Bearer tokens; the family stays unbound.
func TestRefreshUnbound(t *testing.T) {
	h := start(t)
	rt := h.RefreshToken(t, "refresh-client", "", login)
	r := h.do(call{client: "refresh-client", noDPoP: true, form: refresh(rt, withResource("nhn:deft"))})
	if r.code() != "invalid_dpop_proof" {
		t.Fatalf("DEFT without a proof: %d %v", r.status, r.body)
	}
	r = h.do(call{client: "refresh-client", noDPoP: true, form: refresh(rt, withResource("test:bearer"))})
	if r.status != 200 || r.body["token_type"] != "Bearer" {
		t.Fatalf("Bearer API: %d %v", r.status, r.body)
	}
	if stored, err := h.Store.RefreshToken(t.Context(), token.RefreshTokenID(r.body["refresh_token"].(string))); err != nil || stored.JKT != "" {
		t.Errorf("rotated token %+v, %v: want it unbound", stored, err)
	}
}

// TestRefreshLogsHoldNoSecrets: no refresh token value reaches the logs,
// on success, refusal or reuse.
func TestRefreshLogsHoldNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	h := start(t, servertest.Options{Log: lockedWriter{&mu, &logs}, Settings: "log: {level: debug}"})
	key := newP256(t)
	rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	sent := []string{rt}
	r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))})
	if r.status != 200 {
		t.Fatalf("%d %v", r.status, r.body)
	}
	sent = append(sent, r.body["refresh_token"].(string))
	h.Clock.Advance(store.RefreshRetryGrace)
	h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))}) // reuse
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "refresh token reused") {
		t.Fatalf("the reuse is not logged:\n%s", logs.String())
	}
	for _, s := range sent {
		if strings.Contains(logs.String(), s) || strings.Contains(logs.String(), token.RefreshTokenID(s)) {
			t.Fatalf("a refresh token or its hash is in the logs:\n%s", logs.String())
		}
	}
}

// lostRotation rotates rt in the store as a refresh whose commit went
// through but whose answer never reached the client (a 503 after an
// unknown outcome) would have, and returns the successor's value, which
// the client never saw.
func lostRotation(t *testing.T, h *harness, rt string) string {
	t.Helper()
	old, err := h.Store.RefreshToken(t.Context(), token.RefreshTokenID(rt))
	if err != nil {
		t.Fatal(err)
	}
	value := token.NewRefreshTokenValue()
	next := old
	next.ID, next.IssuedAt = token.RefreshTokenID(value), h.Clock.Now()
	if err := h.Store.RotateRefreshToken(t.Context(), h.Clock.Now(), old.ID, next); err != nil {
		t.Fatal(err)
	}
	return value
}

// TestRefreshRetryAfterUnknownOutcome: a client retrying a refresh whose
// answer it never got, with the same refresh token and DPoP key within the
// retry grace, gets a new rotation once, and the successor it never saw is
// retired: presented later, it is reuse.
func TestRefreshRetryAfterUnknownOutcome(t *testing.T) {
	h := start(t)
	key := newP256(t)
	rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
	unseen := lostRotation(t, h, rt)

	h.Clock.Advance(5 * time.Second)
	r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))})
	if r.status != 200 {
		t.Fatalf("the retry: %d %v; want a new rotation", r.status, r.body)
	}
	retried := r.body["refresh_token"].(string)
	r = h.do(call{client: "refresh-client", dpopKey: key, form: refresh(retried, withResource("nhn:deft"))})
	if r.status != 200 {
		t.Fatalf("the retry's refresh token: %d %v", r.status, r.body)
	}

	// A second retry is reuse; so is the successor the retry retired.
	_ = unseen
	for _, name := range []string{"a second retry", "the retired successor"} {
		h := start(t)
		rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
		unseen := lostRotation(t, h, rt)
		if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))}); r.status != 200 {
			t.Fatalf("%s: the retry: %d %v", name, r.status, r.body)
		}
		value := map[string]string{"a second retry": rt, "the retired successor": unseen}[name]
		r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(value, withResource("nhn:deft"))})
		if r.code() != "invalid_grant" || !strings.Contains(r.description(), "already used") {
			t.Errorf("%s: %d %v; want reuse", name, r.status, r.body)
		}
	}
}

// TestRefreshRetryGraceNeedsTheKey: the retry grace is for the holder of
// the DPoP key. The rotated token from another key, or with none, is
// reuse, and revokes the login, as it did without the grace.
func TestRefreshRetryGraceNeedsTheKey(t *testing.T) {
	tests := []struct {
		name string
		call func(h *harness, rt string) call
	}{
		{name: "another key", call: func(h *harness, rt string) call {
			return call{client: "refresh-client", dpopKey: newP256(t), form: refresh(rt, withResource("nhn:deft"))}
		}},
		{name: "no proof", call: func(h *harness, rt string) call {
			return call{client: "refresh-client", noDPoP: true, form: refresh(rt, withResource("test:bearer"))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t)
			key := newP256(t)
			rt := h.RefreshToken(t, "refresh-client", thumbprint(t, key), login)
			lostRotation(t, h, rt)
			r := h.do(tt.call(h, rt))
			if r.code() != "invalid_grant" || !strings.Contains(r.description(), "already used") {
				t.Fatalf("%d %v; want reuse", r.status, r.body)
			}
			if r := h.do(call{client: "refresh-client", dpopKey: key, form: refresh(rt, withResource("nhn:deft"))}); r.code() != "invalid_grant" {
				t.Fatalf("the key's holder after the reuse: %d %v; want the login revoked", r.status, r.body)
			}
		})
	}
}
