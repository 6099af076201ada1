package token_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/servertest"
)

const (
	grantExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess   = "urn:ietf:params:oauth:token-type:access_token"
	originalClientID  = "helseid://claims/client/original_client_id"
	sfmIDClaim        = "e-helse:sfm.api/client/claims/sfm-id"
	journalIDClaim    = "nhn:sfm:journal-id"
	orgNrParentClaim  = "helseid://claims/client/claims/orgnr_parent"
	clientNameClaim   = "helseid://claims/client/client_name"
	exampleJournalID  = "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"
	exampleIdentityID = "tzto6gPhyTQw2bR/Wl0kgF/mTH+jdQoUBvaYSObfmlQ="
)

// exchange is the form of a token exchange request for scope.
func exchange(subject, scope string) func(url.Values) {
	return func(f url.Values) {
		f.Set("grant_type", grantExchange)
		f.Set("subject_token", subject)
		f.Set("subject_token_type", tokenTypeAccess)
		if scope != "" {
			f.Set("scope", scope)
		}
	}
}

// token gets an access token from the server as c asks for it.
func (h *harness) token(c call) string {
	h.t.Helper()
	r := h.do(c)
	if r.status != 200 {
		h.t.Fatalf("token for %s: %d %v", c.client, r.status, r.body)
	}
	return r.body["access_token"].(string)
}

// mint signs claims with the server's own signing key: tokens the server
// would never issue, for the checks that only such tokens can reach.
func (h *harness) mint(claims map[string]any) string {
	h.t.Helper()
	signer, err := h.Srv.Keys().Signer()
	if err != nil {
		h.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		h.t.Fatal(err)
	}
	tok, err := signer.Sign(payload)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// with returns a copy of claims changed by edit.
func with(claims map[string]any, edit func(map[string]any)) map[string]any {
	c := maps.Clone(claims)
	edit(c)
	return c
}

// sfmSubject is the token an EPJ (sfm-client) sends to SFM: DPoP-bound to
// the EPJ's own key, with its sfm-id and a journal id.
func sfmSubject(h *harness) string {
	return h.token(call{client: "sfm-client", assertion: details(map[string]any{"type": "nhn:sfm:journal-id", "value": map[string]any{"journal_id": exampleJournalID}})})
}

// TestExchangeForgeOneFault starts from SFM's exchange of an EPJ's token for
// a Reseptformidleren token and breaks one thing per row.
func TestExchangeForgeOneFault(t *testing.T) {
	h := start(t)
	subject := sfmSubject(h)
	sub := claims(t, subject)
	now := h.Clock.Now()
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := h.Srv.Keys().Signer()
	deftToken := h.token(call{form: deftScope})
	chainToken := h.token(call{client: "chain-actor", form: func(f url.Values) { f.Set("scope", "test:chain/api") }})
	act := func(n int) any {
		var a map[string]any
		for i := range n {
			a = map[string]any{"iss": h.URL, "client_id": fmt.Sprintf("actor-%d", i), "act": a}
		}
		return a
	}

	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		// The request.
		{"no subject_token", call{form: func(f url.Values) { exchange(subject, servertest.RFScope)(f); f.Del("subject_token") }}, 400, "invalid_request", "subject_token is missing"},
		{"no subject_token_type", call{form: func(f url.Values) { exchange(subject, servertest.RFScope)(f); f.Del("subject_token_type") }}, 400, "invalid_request", "subject_token_type is missing"},
		{"subject_token_type id_token", call{form: func(f url.Values) {
			exchange(subject, servertest.RFScope)(f)
			f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")
		}}, 400, "invalid_request", "subject_token_type must be"},
		{"an actor_token", call{form: func(f url.Values) { exchange(subject, servertest.RFScope)(f); f.Set("actor_token", subject) }}, 400, "invalid_request", "actor_token is not supported"},
		{"an audience", call{form: func(f url.Values) { exchange(subject, servertest.RFScope)(f); f.Set("audience", servertest.RFAudience) }}, 400, "invalid_request", "audience is not supported"},
		{"requested_token_type refresh_token", call{form: func(f url.Values) {
			exchange(subject, servertest.RFScope)(f)
			f.Set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")
		}}, 400, "invalid_request", "requested_token_type must be"},

		// The subject token.
		{"subject not a JWT", call{form: exchange("not-a-token", servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - is not a JWS"},
		{"subject signature tampered", call{form: exchange(tamper(subject), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - signature is invalid"},
		{"subject forged with another key under the server's kid", call{form: exchange(jwttest.JWT{
			Header: map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": signer.KeyID()}, Claims: sub, Key: stranger,
		}.Sign(t), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - signature is invalid"},
		{"subject signed by a key the server does not publish", call{form: exchange(jwttest.JWT{
			Header: map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "someone-else"}, Claims: sub, Key: stranger,
		}.Sign(t), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - is not signed by a key of this token service"},
		{"subject with alg none", call{form: exchange(jwttest.JWT{
			Header: map[string]any{"alg": "none", "typ": "at+jwt", "kid": signer.KeyID()}, Claims: sub,
		}.Sign(t), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - is not a JWS"},
		{"subject typ JWT", call{form: exchange(jwttest.JWT{
			Header: map[string]any{"alg": "RS256", "typ": "JWT", "kid": signer.KeyID()}, Claims: sub, Key: stranger,
		}.Sign(t), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - typ must be at+jwt"},
		{"subject from another issuer", call{form: exchange(h.mint(with(sub, func(c map[string]any) { c["iss"] = "https://helseid-sts.nhn.no" })), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - was not issued by this token service"},
		{"subject expired", call{form: exchange(h.mint(with(sub, func(c map[string]any) { c["exp"] = now.Unix() })), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - has expired"},
		{"subject without exp", call{form: exchange(h.mint(with(sub, func(c map[string]any) { delete(c, "exp") })), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - has no exp"},
		{"subject not valid yet", call{form: exchange(h.mint(with(sub, func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - is not valid yet"},
		{"subject without client_id", call{form: exchange(h.mint(with(sub, func(c map[string]any) { delete(c, "client_id") })), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - has no client_id"},
		{"subject with an aud array", call{form: exchange(h.mint(with(sub, func(c map[string]any) { c["aud"] = []string{servertest.SFMAudience} })), servertest.RFScope)}, 400, "invalid_request", "invalid subject_token - claims are not of the types"},
		{"subject of a disabled client", call{form: exchange(h.mint(with(sub, func(c map[string]any) { c["client_id"] = "disabled-client" })), servertest.RFScope)}, 400, "invalid_request", "the client it was issued to is unknown or not active"},

		// Who may exchange.
		{"actor does not own the subject's API", call{client: "chain-actor", form: exchange(subject, servertest.RFScope)}, 400, "invalid_request", "no audience matching configuration owner of client_id chain-actor was found in subject token"},
		{"subject for an API with no owners", call{form: exchange(deftToken, servertest.RFScope)}, 400, "invalid_request", "no audience matching configuration owner of client_id sfm-actor"},
		{"actor the subject client does not allow", call{client: "sfm-other-actor", form: exchange(subject, servertest.RFScope)}, 400, "invalid_request", "not permitted"},
		{"actor without the token-exchange grant", call{client: "sfm-client", form: exchange(subject, "e-helse:sfm.api/sfm.api")}, 400, "unauthorized_client", grantExchange},
		{"subject exchanged three times already", call{client: "chain-actor", form: exchange(h.mint(with(claims(t, chainToken), func(c map[string]any) { c["act"] = act(3) })), "test:chain/api")}, 400, "invalid_request", "subject_token exchanged too many times (3)"},

		// The downstream API.
		{"scope the actor may not have", call{form: exchange(subject, "nhn:deft/api")}, 400, "invalid_scope", "not allowed for this client"},
		{"identity scope", call{form: exchange(subject, "openid")}, 400, "invalid_scope", "not an API scope"},
		{"scopes of two APIs", call{client: "chain-actor", form: exchange(chainToken, "test:chain/api "+servertest.RFScope)}, 400, "invalid_target", "invalid scopes requested"},
		{"unknown resource", call{form: func(f url.Values) { exchange(subject, servertest.RFScope)(f); f.Set("resource", "nhn:unknown") }}, 400, "invalid_target", "not a known API"},
		{"two resources", call{form: func(f url.Values) {
			exchange(subject, servertest.RFScope)(f)
			f["resource"] = []string{servertest.RFAudience, "nhn:deft"}
		}}, 400, "invalid_target", "name one resource"},
		{"no proof for a downstream API that requires DPoP", call{noDPoP: true, form: exchange(subject, servertest.RFScope)}, 400, "invalid_dpop_proof", "e-helse:reseptformidleren does not accept Bearer tokens"},
		{"actor's child organisation not on its list", call{assertion: details(childDetail(servertest.Child)), form: exchange(subject, servertest.RFScope)}, 400, "invalid_request", "HID-1006"},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			if tt.call.client == "" {
				tt.call.client = "sfm-actor"
			}
			r := h.do(tt.call)
			fmt.Fprintf(&golden, "%s\n\t%d %s: %s\n", tt.name, r.status, r.code(), strings.ReplaceAll(r.description(), h.URL, "{issuer}"))
			if r.status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code(), r.description(), tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("error_description %q does not say %q", r.description(), tt.wantDesc)
			}
			if _, ok := r.body["access_token"]; ok {
				t.Fatal("an error response carries a token")
			}
		})
	}
	checkGolden(t, "testdata/exchange.golden", golden.String())
}

// TestExchangeSFMToReseptformidleren is the seed case (profile §4.6): an
// EPJ's token for SFM, exchanged by SFM for Reseptformidleren, says who the
// original client is and that SFM exchanged it.
func TestExchangeSFMToReseptformidleren(t *testing.T) {
	h := start(t)
	subject := sfmSubject(h)
	sub := claims(t, subject)
	h.Clock.Advance(10 * time.Minute)
	actorKey := newP256(t)
	r := h.do(call{client: "sfm-actor", dpopKey: actorKey, form: exchange(subject, servertest.RFScope)})
	if r.status != 200 {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	if r.body["issued_token_type"] != tokenTypeAccess || r.body["token_type"] != "DPoP" || r.body["scope"] != servertest.RFScope {
		t.Errorf("response %v", r.body)
	}
	if r.body["expires_in"] != float64(50*60) {
		t.Errorf("expires_in %v, want the subject's remaining 3000 s", r.body["expires_in"])
	}
	for _, absent := range []string{"refresh_token", "rt_expires_in", "rejected_scope"} {
		if _, ok := r.body[absent]; ok {
			t.Errorf("response carries %s", absent)
		}
	}
	_, c := verify(t, h, r.body["access_token"].(string))
	want := map[string]any{
		"iss": h.URL, "aud": servertest.RFAudience, "client_id": "sfm-actor",
		originalClientID: "sfm-client",
		// The subject's helseid:// client claims are kept.
		clientNameClaim:                          "SFM client",
		orgNrParentClaim:                         servertest.Customer,
		"helseid://claims/client/client_tenancy": "single-tenant",
		"helseid://claims/client/amr":            "ec_private_key",
		"client_amr":                             "private_key_jwt",
		// Reseptformidleren accepts these two from subject tokens.
		sfmIDClaim:     servertest.SFMID,
		journalIDClaim: exampleJournalID,
		"exp":          sub["exp"],
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	a, _ := c["act"].(map[string]any)
	if a["client_id"] != "sfm-actor" || a["iss"] != h.URL || a[orgNrParentClaim] != servertest.SFMOrg || a["act"] != nil {
		t.Errorf("act = %v, want sfm-actor acting for SFM's organisation, nothing nested", a)
	}
	cnf, _ := c["cnf"].(map[string]any)
	subCnf, _ := sub["cnf"].(map[string]any)
	if cnf["jkt"] != thumbprint(t, actorKey) || cnf["jkt"] == subCnf["jkt"] {
		t.Errorf("cnf.jkt %v, want the actor's key %s", cnf["jkt"], thumbprint(t, actorKey))
	}
	if s, _ := c["scope"].([]any); len(s) != 1 || s[0] != servertest.RFScope {
		t.Errorf("scope %v", c["scope"])
	}

	// SFM exchanges per call: the same subject token again is fine.
	if r := h.do(call{client: "sfm-actor", form: exchange(subject, "")}); r.status != 200 || r.body["scope"] != servertest.RFScope {
		t.Errorf("second exchange, scope omitted: %d %v", r.status, r.body)
	}
}

// TestExchangeIdentityAndClaims checks what crosses an exchange: the user's
// identity and the subject's helseid:// claims always; API-specific claims
// only to an API that lists them in subject_claims.
func TestExchangeIdentityAndClaims(t *testing.T) {
	h := start(t)
	base := claims(t, h.token(call{client: "chain-actor", form: func(f url.Values) { f.Set("scope", "test:chain/api") }}))
	subject := h.mint(with(base, func(c map[string]any) {
		c["sub"] = exampleIdentityID
		c["helseid://claims/identity/pid"] = "17056600574"
		c["helseid://claims/identity/security_level"] = "4"
		c["helseid://claims/hpr/hpr_number"] = "431001110"
		c["amr"] = []string{"pwd"}
		c["idp"] = "testidp-oidc"
		c["auth_time"] = h.Clock.Now().Unix()
		c[sfmIDClaim] = servertest.SFMID
		c[journalIDClaim] = exampleJournalID
	}))
	r := h.do(call{client: "chain-actor", form: exchange(subject, "test:chain/api")})
	if r.status != 200 {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	_, c := verify(t, h, r.body["access_token"].(string))
	for _, k := range []string{"sub", "helseid://claims/identity/pid", "helseid://claims/identity/security_level", "helseid://claims/hpr/hpr_number", "idp", "auth_time"} {
		if c[k] == nil || fmt.Sprint(c[k]) != fmt.Sprint(claims(t, subject)[k]) {
			t.Errorf("%s = %v, want the subject's %v", k, c[k], claims(t, subject)[k])
		}
	}
	if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Errorf("amr %v", c["amr"])
	}
	for _, k := range []string{sfmIDClaim, journalIDClaim} {
		if _, ok := c[k]; ok {
			t.Errorf("%s crossed to test:chain, which does not list it in subject_claims", k)
		}
	}
}

// TestExchangeChain exchanges a token three times, which nests three acts
// with the oldest innermost, and refuses the fourth (docs/design.md, token exchange depth).
func TestExchangeChain(t *testing.T) {
	h := start(t)
	tok := h.token(call{client: "chain-actor", form: func(f url.Values) { f.Set("scope", "test:chain/api") }})
	for depth := 1; depth <= 3; depth++ {
		r := h.do(call{client: "chain-actor", form: exchange(tok, "test:chain/api")})
		if r.status != 200 {
			t.Fatalf("exchange %d: %d %v", depth, r.status, r.body)
		}
		tok = r.body["access_token"].(string)
		_, c := verify(t, h, tok)
		if c[originalClientID] != "chain-actor" {
			t.Errorf("exchange %d: original_client_id %v", depth, c[originalClientID])
		}
		n := 0
		for a, _ := c["act"].(map[string]any); a != nil; a, _ = a["act"].(map[string]any) {
			n++
		}
		if n != depth {
			t.Fatalf("exchange %d: %d act levels", depth, n)
		}
	}
	r := h.do(call{client: "chain-actor", form: exchange(tok, "test:chain/api")})
	if r.code() != "invalid_request" || r.description() != "subject_token exchanged too many times (3)" {
		t.Fatalf("fourth exchange: %d %v", r.status, r.body)
	}
}

// TestExchangeSubjectLifetime: an expired subject is refused; one signed by
// a key that has since retired is still good while it lives.
func TestExchangeSubjectLifetime(t *testing.T) {
	h := start(t)
	subject := sfmSubject(h)
	h.Clock.Advance(time.Minute)
	if _, err := h.Srv.Keys().Rotate(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if r := h.do(call{client: "sfm-actor", form: exchange(subject, servertest.RFScope)}); r.status != 200 {
		t.Fatalf("subject signed by a retired key: %d %v", r.status, r.body)
	}
	h.Clock.Advance(59 * time.Minute)
	r := h.do(call{client: "sfm-actor", form: exchange(subject, servertest.RFScope)})
	if r.code() != "invalid_request" || r.description() != "invalid subject_token - has expired" {
		t.Fatalf("expired subject: %d %v", r.status, r.body)
	}
}

// TestExchangeRefusalSpendsNothing: a refused exchange leaves the actor's
// assertion and proof unspent.
func TestExchangeRefusalSpendsNothing(t *testing.T) {
	h := start(t)
	subject := sfmSubject(h)
	assertion := h.assertion("sfm-actor", nil)
	proof := h.proof(newP256(t), nil)
	r := h.do(call{client: "sfm-actor", rawAssertion: assertion, rawProof: proof, form: exchange(tamper(subject), servertest.RFScope)})
	if r.code() != "invalid_request" {
		t.Fatalf("forged subject: %d %v", r.status, r.body)
	}
	r = h.do(call{client: "sfm-actor", rawAssertion: assertion, rawProof: proof, form: exchange(subject, servertest.RFScope)})
	if r.status != 200 {
		t.Fatalf("retry with the same assertion and proof: %d %v", r.status, r.body)
	}
}
