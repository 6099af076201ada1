package token_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// idAlgClient is a login client like web that asks for its ID tokens to be
// signed with alg; alg "" asks for nothing.
func idAlgClient(id, alg string) string {
	c := fmt.Sprintf(`  - id: %s
    system: sys
    organisation: "310900036"
    grant_types: [authorization_code, refresh_token]
    scopes: [e-helse:sfm.api/sfm.api]
    identity_scopes: [openid, offline_access]
    redirect_uris: [https://web.example/callback]
    jwks: {{jwks "%s" "ES256"}}
`, id, id)
	if alg != "" {
		c += "    id_token_signed_response_alg: " + alg + "\n"
	}
	return c
}

// redeemAndRefresh logs in for client with openid, redeems the code and
// refreshes once, and returns both answers.
func (h *harness) redeemAndRefresh(t *testing.T, client string, refreshScope string) (redeemed, refreshed result) {
	t.Helper()
	code, verifier := h.loginCode(testLogin(loginPID), []string{"openid", "offline_access", scopeSFM},
		func(c *store.AuthorizationCode) { c.ClientID = client })
	key := newP256(t)
	redeemed = h.do(call{client: client, form: redeemForm(code, verifier), dpopKey: key})
	if redeemed.status != 200 {
		t.Fatalf("redeem: %d %v", redeemed.status, redeemed.body)
	}
	h.Clock.Advance(time.Minute)
	refreshed = h.do(call{client: client, form: func(f url.Values) {
		f.Set("grant_type", "refresh_token")
		f.Set("refresh_token", redeemed.body["refresh_token"].(string))
		if refreshScope != "" {
			f.Set("scope", refreshScope)
		}
	}, dpopKey: key})
	if refreshed.status != 200 {
		t.Fatalf("refresh: %d %v", refreshed.status, refreshed.body)
	}
	return redeemed, refreshed
}

// TestIDTokenAlgorithm: each client's ID tokens, at redemption and at
// refresh, are signed with the algorithm it asked for (RS256 when it asked
// for nothing, also when access tokens are ES256), by a key of the
// published JWKS, with the at_hash of that algorithm; the access token
// keeps the server's algorithm.
func TestIDTokenAlgorithm(t *testing.T) {
	asks := []string{"", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
	for _, access := range []string{"RS256", "ES256"} {
		t.Run("access tokens "+access, func(t *testing.T) {
			var clients strings.Builder
			for _, alg := range asks {
				clients.WriteString(idAlgClient(algClient(alg), alg))
			}
			reg := strings.Replace(loginRegistry, "  - id: sfm-actor\n", clients.String()+"  - id: sfm-actor\n", 1)
			h := start(t, servertest.Options{Registry: reg, Settings: "environment: test", Algorithm: access})
			for _, alg := range asks {
				want := jose.SignatureAlgorithm(alg)
				if alg == "" {
					want = jose.RS256
				}
				client := algClient(alg)
				t.Run(client, func(t *testing.T) {
					redeemed, refreshed := h.redeemAndRefresh(t, client, "")
					var sub string
					for _, r := range []struct {
						name string
						res  result
					}{{"redemption", redeemed}, {"refresh", refreshed}} {
						at, _ := r.res.body["access_token"].(string)
						raw, _ := r.res.body["id_token"].(string)
						if raw == "" {
							t.Fatalf("%s: no id_token: %v", r.name, r.res.body)
						}
						id := h.verifyIDTokenAlg(raw, want)
						athash, err := idtoken.ATHash(want, at)
						if err != nil {
							t.Fatal(err)
						}
						if id["at_hash"] != athash || id["aud"] != client || id["sub"] == "" {
							t.Errorf("%s: at_hash %v (want %s), aud %v, sub %v", r.name, id["at_hash"], athash, id["aud"], id["sub"])
						}
						if sub == "" {
							sub, _ = id["sub"].(string)
						} else if id["sub"] != sub {
							t.Errorf("refresh: sub %v, want the login's %s", id["sub"], sub)
						}
						if _, ok := id["nonce"]; ok != (r.name == "redemption") {
							t.Errorf("%s: nonce present %v", r.name, ok)
						}
						if hdr, _ := verify(t, h, at); hdr.Algorithm != access {
							t.Errorf("%s: access token alg %s, want %s", r.name, hdr.Algorithm, access)
						}
					}
				})
			}
		})
	}
}

// algClient is the ID of the client that asks for alg.
func algClient(alg string) string {
	if alg == "" {
		return "web-default"
	}
	return "web-" + strings.ToLower(alg)
}

// A refresh that narrows scope without openid gets no ID token; a family
// started before refreshes had ID tokens (no names in its grant) still
// gets one, without names.
func TestRefreshIDTokenCases(t *testing.T) {
	h := startLogin(t)
	_, refreshed := h.redeemAndRefresh(t, "web", scopeSFM)
	if _, ok := refreshed.body["id_token"]; ok {
		t.Error("a refresh whose scope leaves out openid issued an ID token")
	}

	// An older family: its grant has no names.
	grant, err := json.Marshal(token.RefreshGrant{
		Scopes:   []string{"openid", "profile", "offline_access", "test:bearer/read"},
		Identity: token.Identity{Subject: h.sub(loginPID), AuthTime: loginAuthAt, SID: "0123456789ABCDEF0123456789ABCDEF", IDP: testIdPName},
	})
	if err != nil {
		t.Fatal(err)
	}
	value := token.NewRefreshTokenValue()
	now := h.Clock.Now()
	if err := h.Store.CreateRefreshToken(t.Context(), store.RefreshToken{ID: token.RefreshTokenID(value), FamilyID: "old-family",
		ClientID: "web", Grant: grant, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r := h.do(call{client: "web", noDPoP: true, form: func(f url.Values) {
		f.Set("grant_type", "refresh_token")
		f.Set("refresh_token", value)
		f.Set("resource", "test:bearer")
	}})
	if r.status != 200 {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	raw, _ := r.body["id_token"].(string)
	if raw == "" {
		t.Fatalf("no id_token: %v", r.body)
	}
	id := h.verifyIDToken(raw)
	if id["sub"] != h.sub(loginPID) || id["sid"] != "0123456789ABCDEF0123456789ABCDEF" || id["auth_time"] != float64(loginAuthAt) {
		t.Errorf("ID token of an older family: %v", id)
	}
	if _, ok := id["name"]; ok {
		t.Error("names from nowhere")
	}
}

// A client that starts asking for an algorithm no key signs with yet gets
// no ID token signed with another: the redemption is refused with
// temporarily_unavailable, spending nothing, until the algorithm's first
// key has been published for the lead; then its ID tokens verify against
// the JWKS.
func TestIDTokenAlgorithmNotYetPublished(t *testing.T) {
	h := startLogin(t)
	ctx := t.Context()
	web, err := store.Get(ctx, h.Store, store.ClientKind, "web")
	if err != nil {
		t.Fatal(err)
	}
	web.IDTokenSignedResponseAlg = "ES384"
	if _, err := store.Update(ctx, h.Store, store.ClientKind, web); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Srv.Registry().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	scopes := []string{"openid", scopeSFM}
	code, verifier := h.loginCode(testLogin(loginPID), scopes, nil)
	key := newP256(t)
	redeem := func() result { return h.do(call{client: "web", form: redeemForm(code, verifier), dpopKey: key}) }

	tests := []struct {
		name     string
		before   func()
		wantDesc string
	}{
		{name: "before maintenance", before: func() {},
			wantDesc: "ID tokens for this client are signed with ES384, and no key signs with ES384 yet: try again later"},
		{name: "in the lead", before: func() {
			if err := h.Srv.Keys().Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}, wantDesc: "ID tokens for this client are signed with ES384, and the first ES384 key signs from " +
			h.Clock.Now().Add(24*time.Hour).UTC().Format(time.RFC3339) + ": try again then"},
		// The code was not spent by either refusal.
		{name: "again in the lead", before: func() {},
			wantDesc: "ID tokens for this client are signed with ES384, and the first ES384 key signs from " +
				h.Clock.Now().Add(24*time.Hour).UTC().Format(time.RFC3339) + ": try again then"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.before()
			r := redeem()
			if r.status != 503 || r.code() != "temporarily_unavailable" || r.description() != tt.wantDesc {
				t.Fatalf("got %d %s %q, want 503 temporarily_unavailable %q", r.status, r.code(), r.description(), tt.wantDesc)
			}
		})
	}

	h.Clock.Advance(24 * time.Hour)
	if err := h.Srv.Keys().Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	code, verifier = h.loginCode(testLogin(loginPID), scopes, nil)
	r := h.do(call{client: "web", form: redeemForm(code, verifier), dpopKey: key})
	if r.status != 200 {
		t.Fatalf("after the lead: %d %v", r.status, r.body)
	}
	id := h.verifyIDTokenAlg(r.body["id_token"].(string), jose.ES384)
	if want, _ := idtoken.ATHash(jose.ES384, r.body["access_token"].(string)); id["at_hash"] != want {
		t.Errorf("at_hash %v, want %s", id["at_hash"], want)
	}
}
