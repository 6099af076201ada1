package token_test

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/token"
)

// userinfoLogin redeems a login with scopes and returns the access token
// and the DPoP key it is bound to (nil for a Bearer token, for test:bearer).
func (h *harness) userinfoLogin(scopes []string, bearer bool) (string, crypto.Signer, map[string]any) {
	h.t.Helper()
	code, verifier := h.loginCode(testLogin(loginPID), scopes, nil)
	c := call{client: "web", form: redeemForm(code, verifier)}
	var key crypto.Signer
	if bearer {
		c.noDPoP = true
	} else {
		key = newP256(h.t)
		c.dpopKey = key
	}
	r := h.do(c)
	if r.status != 200 {
		h.t.Fatalf("redeem: %d %v", r.status, r.body)
	}
	return r.body["access_token"].(string), key, r.body
}

func ath(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// userinfoProof is a DPoP proof for GET userinfo with at, changed by
// mutate.
func (h *harness) userinfoProof(key crypto.Signer, at string, mutate func(hd, c map[string]any)) string {
	return h.proof(key, func(hd, c map[string]any) {
		c["htm"] = http.MethodGet
		c["htu"] = h.URL + token.UserinfoPath
		c["ath"] = ath(at)
		delete(c, "nonce")
		if mutate != nil {
			mutate(hd, c)
		}
	})
}

type userinfoCall struct {
	method string
	query  string
	authz  []string
	proofs []string
	body   string
}

func (h *harness) userinfo(c userinfoCall) result {
	h.t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, h.URL+token.UserinfoPath+c.query, strings.NewReader(c.body))
	if err != nil {
		h.t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, a := range c.authz {
		req.Header.Add("Authorization", a)
	}
	for _, p := range c.proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			h.t.Fatalf("userinfo %d is not JSON: %q", resp.StatusCode, raw)
		}
	}
	return r
}

// TestUserinfo: a DPoP-bound and a Bearer token of a login get the
// person's claims by the scopes, with names and HPR details from the
// registers, and none of the login's own claims.
func TestUserinfo(t *testing.T) {
	h := startLogin(t)
	scopes := []string{"openid", "profile", scopePID, scopeHPR, scopeSFM}
	at, key, _ := h.userinfoLogin(scopes, false)
	r := h.userinfo(userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, nil)}})
	if r.status != 200 {
		t.Fatalf("userinfo: %d %v", r.status, r.body)
	}
	want := map[string]any{
		"sub": h.sub(loginPID), claimPID: loginPID, claimHPR: loginHPR,
		"name": "KVART GREVLING", "given_name": "KVART", "middle_name": "", "family_name": "GREVLING",
		"userinfo_issued_at": float64(h.Clock.Now().Unix()),
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("userinfo %s = %v, want %v", k, r.body[k], v)
		}
	}
	for _, k := range []string{"auth_time", "idp", "amr", "sid", claimLevel, "aud", "scope"} {
		if _, ok := r.body[k]; ok {
			t.Errorf("userinfo has %s", k)
		}
	}
	details, _ := json.Marshal(r.body["helseid://claims/hpr/hpr_details"])
	wantDetails := `{"approvals":[{"authorization":{"description":"Autorisasjon","value":"1"},"profession":"LE","requisition_rights":[],"specialities":[{"description":"Allmennmedisin","value":"1"}]}]}`
	if string(details) != wantDetails {
		t.Errorf("hpr_details = %s, want %s", details, wantDetails)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}

	// A Bearer token, by POST; openid alone gives sub and nothing else.
	bt, _, _ := h.userinfoLogin([]string{"openid", "test:bearer/read"}, true)
	r = h.userinfo(userinfoCall{method: http.MethodPost, authz: []string{"Bearer " + bt}})
	if r.status != 200 {
		t.Fatalf("userinfo with Bearer: %d %v", r.status, r.body)
	}
	if r.body["sub"] != h.sub(loginPID) || len(r.body) != 2 {
		t.Errorf("userinfo for openid alone = %v, want sub and userinfo_issued_at", r.body)
	}
}

// TestUserinfoForgeOneFault starts from a valid DPoP userinfo request and
// breaks one thing per row.
func TestUserinfoForgeOneFault(t *testing.T) {
	h := startLogin(t)
	at, key, _ := h.userinfoLogin([]string{"openid", scopePID, scopeSFM}, false)
	bearer, _, _ := h.userinfoLogin([]string{"openid", "test:bearer/read"}, true)
	noOpenID, noOpenIDKey, _ := h.userinfoLogin([]string{scopePID, scopeSFM}, false)
	machine := h.token(call{client: "rf-owner", noDPoP: true, form: func(f url.Values) { f.Set("scope", "test:bearer/read") }})
	claimsOf := claims(t, at)
	minted := func(edit func(map[string]any)) string { return h.mint(with(claimsOf, edit)) }
	expired := minted(func(c map[string]any) { c["exp"] = h.Clock.Now().Add(-time.Second).Unix() })
	stranger := newP256(t)
	foreign := jwttest.JWT{Header: map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "not-ours"}, Claims: claimsOf, Key: stranger}.Sign(t)
	code, verifier := h.loginCode(testLogin(loginPID), []string{"openid", scopeSFM}, nil)
	idr := h.do(call{client: "web", form: redeemForm(code, verifier)})
	idToken, _ := idr.body["id_token"].(string)
	replayed := h.userinfoProof(key, at, nil)
	if r := h.userinfo(userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{replayed}}); r.status != 200 {
		t.Fatalf("first use of the proof: %d %v", r.status, r.body)
	}

	valid := func() userinfoCall {
		return userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, nil)}}
	}
	tests := []struct {
		name       string
		call       userinfoCall
		wantStatus int
		wantCode   string
		wantDesc   string
		// wantChallenge is the start of a WWW-Authenticate value.
		wantChallenge string
	}{
		{"valid", valid(), 200, "", "", ""},
		{"no Authorization", userinfoCall{}, 401, "", "", "Bearer"},
		{"two Authorization headers", userinfoCall{authz: []string{"DPoP " + at, "DPoP " + at}, proofs: valid().proofs}, 400, "invalid_request", "one Authorization header", ""},
		{"Basic scheme", userinfoCall{authz: []string{"Basic dXNlcjpwYXNz"}}, 401, "invalid_request", "the Authorization scheme must be DPoP or Bearer", "Bearer"},
		{"token in the query", userinfoCall{query: "?access_token=" + at}, 400, "invalid_request", "send the access token in the Authorization header", ""},
		{"token in the form", userinfoCall{method: http.MethodPost, body: "access_token=" + at}, 400, "invalid_request", "send the access token in the Authorization header", ""},
		{"PUT", userinfoCall{method: http.MethodPut, authz: []string{"Bearer " + bearer}}, 405, "invalid_request", "the userinfo endpoint accepts GET and POST", ""},
		{"empty token", userinfoCall{authz: []string{"DPoP "}}, 401, "invalid_token", "the access token is missing", "DPoP error=\"invalid_token\""},
		{"DPoP-bound token as Bearer", userinfoCall{authz: []string{"Bearer " + at}}, 401, "invalid_token",
			"the access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof", "DPoP error=\"invalid_token\""},
		{"Bearer token as DPoP", userinfoCall{authz: []string{"DPoP " + bearer}, proofs: []string{h.userinfoProof(key, bearer, nil)}}, 401, "invalid_token",
			"the access token is not DPoP-bound: send it with the Bearer scheme", "DPoP error=\"invalid_token\""},
		{"no proof", userinfoCall{authz: []string{"DPoP " + at}}, 401, "invalid_dpop_proof", "send one DPoP proof", "DPoP error=\"invalid_dpop_proof\""},
		{"two proofs", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, nil), h.userinfoProof(key, at, nil)}}, 401, "invalid_dpop_proof", "send one DPoP proof", "DPoP"},
		{"proof by another key", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(stranger, at, nil)}}, 401, "invalid_dpop_proof", "", "DPoP"},
		{"htm POST", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, func(_, c map[string]any) { c["htm"] = "POST" })}}, 401, "invalid_dpop_proof", "", "DPoP"},
		{"htu of the token endpoint", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, func(_, c map[string]any) { c["htu"] = h.tokenURL() })}}, 401, "invalid_dpop_proof", "", "DPoP"},
		{"no ath", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, func(_, c map[string]any) { delete(c, "ath") })}}, 401, "invalid_dpop_proof", "", "DPoP"},
		{"ath of another token", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, bearer, nil)}}, 401, "invalid_dpop_proof", "", "DPoP"},
		{"stale iat", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{h.userinfoProof(key, at, func(_, c map[string]any) { c["iat"] = h.Clock.Now().Add(-time.Hour).Unix() })}}, 401, "invalid_dpop_proof", "", "DPoP"},
		{"replayed proof", userinfoCall{authz: []string{"DPoP " + at}, proofs: []string{replayed}}, 401, "invalid_dpop_proof", "DPoP proof jti was already used", "DPoP"},
		{"expired token", userinfoCall{authz: []string{"DPoP " + expired}, proofs: []string{h.userinfoProof(key, expired, nil)}}, 401, "invalid_token", "the access token has expired", "DPoP"},
		{"token of another issuer's key", userinfoCall{authz: []string{"DPoP " + foreign}, proofs: []string{h.userinfoProof(key, foreign, nil)}}, 401, "invalid_token",
			"the access token is not signed by a key of this token service", "DPoP"},
		{"ID token", userinfoCall{authz: []string{"Bearer " + idToken}}, 401, "invalid_token", "the access token typ must be at+jwt", "Bearer"},
		{"no openid scope", userinfoCall{authz: []string{"DPoP " + noOpenID}, proofs: []string{h.userinfoProof(noOpenIDKey, noOpenID, nil)}}, 403, "insufficient_scope",
			"the access token was not issued with the openid scope", `DPoP error="insufficient_scope", error_description="the access token was not issued with the openid scope", scope="openid"`},
		{"machine token", userinfoCall{authz: []string{"Bearer " + machine}}, 403, "insufficient_scope", "", "Bearer error=\"insufficient_scope\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.userinfo(tt.call)
			if r.status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("got %d %v, want %d %s", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantDesc != "" && r.description() != tt.wantDesc {
				t.Errorf("error_description %q, want %q", r.description(), tt.wantDesc)
			}
			if tt.wantChallenge != "" && !hasChallenge(r.header, tt.wantChallenge) {
				t.Errorf("WWW-Authenticate %q, want one starting %q", r.header.Values("WWW-Authenticate"), tt.wantChallenge)
			}
			if tt.wantStatus == 200 && r.body["sub"] == nil {
				t.Errorf("no sub: %v", r.body)
			}
		})
	}
}

func hasChallenge(h http.Header, prefix string) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}
