package token_test

import (
	"crypto/rsa"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestForgeOneFault starts from a valid DPoP token request and breaks one
// thing per row, asserting the exact error code and HTTP status.
func TestForgeOneFault(t *testing.T) {
	h := start(t)
	stranger := newP256(t)
	rsaKey := h.Key(t, "rsa-client").Key.(*rsa.PrivateKey)
	deftKey := h.Key(t, "deft-client")

	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantCode   string
		wantDesc   string // substring of error_description
	}{
		// The client assertion.
		{"assertion alg none", call{assertion: func(h, c map[string]any) { h["alg"] = "none" }}, 401, "invalid_client", `alg "none" is not allowed`},
		{"assertion HS256 keyed with the public key", call{assertion: func(h, c map[string]any) { h["alg"] = "HS256" }}, 401, "invalid_client", `alg "HS256" is not allowed`},
		{"assertion unknown kid", call{assertion: func(h, c map[string]any) { h["kid"] = "not-registered" }}, 401, "invalid_client", "no registered key"},
		{"assertion signed by an unregistered key", call{rawAssertion: forgeAssertion(t, h, stranger, "deft-client", deftKey.KeyID)}, 401, "invalid_client", "signature is invalid"},
		{"assertion bad signature", call{rawAssertion: tamper(h.assertion("deft-client", nil))}, 401, "invalid_client", "signature is invalid"},
		{"assertion expired", call{assertion: func(h2, c map[string]any) { c["exp"] = h.Clock.Now().Add(-11 * time.Second).Unix() }}, 401, "invalid_client", "expired"},
		{"assertion lifetime over 60 s", call{assertion: func(h2, c map[string]any) { c["exp"] = h.Clock.Now().Add(90 * time.Second).Unix() }}, 401, "invalid_client", "lifetime exceeds 60 seconds"},
		{"assertion iat in the future", call{assertion: func(h2, c map[string]any) { c["iat"] = h.Clock.Now().Add(30 * time.Second).Unix() }}, 401, "invalid_client", "iat is in the future"},
		{"assertion wrong aud", call{assertion: func(h, c map[string]any) { c["aud"] = "https://helseid-sts.nhn.no" }}, 401, "invalid_client", "aud"},
		{"assertion wrong iss", call{assertion: func(h, c map[string]any) { c["iss"] = "rsa-client" }}, 401, "invalid_client", "iss must equal sub"},
		{"assertion sub of another client", call{assertion: func(h, c map[string]any) { c["sub"], c["iss"] = "rsa-client", "rsa-client" }, form: func(f url.Values) { f.Del("client_id") }}, 401, "invalid_client", "no registered key"},
		{"assertion missing jti", call{assertion: func(h, c map[string]any) { delete(c, "jti") }}, 401, "invalid_client", "no jti"},
		{"assertion typ dpop+jwt", call{assertion: func(h, c map[string]any) { h["typ"] = "dpop+jwt" }}, 401, "invalid_client", "typ"},
		{"assertion of an RSA client signed with HS256 keyed by its public key", call{client: "rsa-client", assertion: func(h, c map[string]any) { h["alg"] = "HS256" }}, 401, "invalid_client", "not allowed"},
		{"client_id does not match", call{form: func(f url.Values) { f.Set("client_id", "rsa-client") }}, 401, "invalid_client", "client_id does not match"},
		{"unknown client", call{assertion: func(h, c map[string]any) { c["sub"], c["iss"] = "nobody", "nobody" }, form: func(f url.Values) { f.Del("client_id") }}, 401, "invalid_client", "unknown client"},
		{"pending client", call{client: "pending-client"}, 401, "invalid_client", "waiting for approval"},
		{"disabled client", call{client: "disabled-client"}, 401, "invalid_client", "disabled"},
		{"no client authentication", call{form: func(f url.Values) { f.Del("client_assertion"); f.Del("client_assertion_type") }}, 401, "invalid_client", "private_key_jwt"},
		{"wrong client_assertion_type", call{form: func(f url.Values) { f.Set("client_assertion_type", "urn:x") }}, 401, "invalid_client", "client_assertion_type"},
		{"client secret", call{form: func(f url.Values) {
			f.Del("client_assertion")
			f.Del("client_assertion_type")
			f.Set("client_secret", "s")
		}}, 401, "invalid_client", "client secrets are not accepted"},
		{"basic auth and an assertion", call{header: func(hd http.Header) { hd.Set("Authorization", "Basic ZGVmdC1jbGllbnQ6cw==") }}, 400, "invalid_request", "more than one client authentication method"},
		{"both details claims", call{assertion: func(h, c map[string]any) {
			c["assertion_details"] = childDetail(servertest.Child)
			c["authorization_details"] = childDetail(servertest.Child)
		}}, 400, "invalid_request", "both assertion_details and authorization_details"},

		// The DPoP proof.
		{"proof alg none", call{proof: func(h, c map[string]any) { h["alg"] = "none" }}, 400, "invalid_dpop_proof", "alg is not allowed"},
		{"proof HS256 keyed with the public key", call{proof: func(h, c map[string]any) { h["alg"] = "HS256" }}, 400, "invalid_dpop_proof", "alg is not allowed"},
		{"private key in the proof jwk", call{proof: func(h, c map[string]any) { h["jwk"] = jose.JSONWebKey{Key: stranger} }, dpopKey: stranger}, 400, "invalid_dpop_proof", "must not contain a private key"},
		{"proof jwk of another key", call{proof: func(h, c map[string]any) { h["jwk"] = jose.JSONWebKey{Key: stranger.Public()} }}, 400, "invalid_dpop_proof", "signature is invalid"},
		{"proof typ JWT", call{proof: func(h, c map[string]any) { h["typ"] = "JWT" }}, 400, "invalid_dpop_proof", "typ"},
		{"proof wrong htm", call{proof: func(h, c map[string]any) { c["htm"] = "GET" }}, 400, "invalid_dpop_proof", "htm"},
		{"proof wrong htu", call{proof: func(h2, c map[string]any) { c["htu"] = h.URL + "/connect/par" }}, 400, "invalid_dpop_proof", "htu"},
		{"proof htu of another host", call{proof: func(h, c map[string]any) { c["htu"] = "https://helseid-sts.nhn.no/connect/token" }}, 400, "invalid_dpop_proof", "htu"},
		{"proof stale iat", call{proof: func(h2, c map[string]any) { c["iat"] = h.Clock.Now().Add(-2 * time.Minute).Unix() }}, 400, "invalid_dpop_proof", "too old"},
		{"proof future iat", call{proof: func(h2, c map[string]any) { c["iat"] = h.Clock.Now().Add(2 * time.Minute).Unix() }}, 400, "invalid_dpop_proof", "future"},
		{"proof missing jti", call{proof: func(h, c map[string]any) { delete(c, "jti") }}, 400, "invalid_dpop_proof", "no jti"},
		{"proof RSA key of 2048 bits is fine but alg must fit", call{proof: func(h, c map[string]any) { h["jwk"] = jose.JSONWebKey{Key: rsaKey.Public()} }}, 400, "invalid_dpop_proof", "does not fit"},
		{"proof missing nonce", call{proof: func(h, c map[string]any) { delete(c, "nonce") }}, 400, "use_dpop_nonce", "nonce"},
		{"proof empty nonce", call{proof: func(h, c map[string]any) { c["nonce"] = "" }}, 400, "use_dpop_nonce", "nonce"},
		{"proof forged nonce", call{proof: func(h, c map[string]any) { c["nonce"] = "AXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" }}, 400, "use_dpop_nonce", "not one this server issued"},
		{"proof stale nonce", call{proof: func(h2, c map[string]any) {
			c["nonce"] = h.Srv.Keys().Nonces().Issue(h.Clock.Now().Add(-3 * time.Minute))
		}}, 400, "use_dpop_nonce", "stale"},
		{"two DPoP headers", call{header: func(hd http.Header) { hd.Add("DPoP", hd.Get("DPoP")) }}, 400, "invalid_dpop_proof", "exactly one DPoP header"},
		{"empty DPoP header", call{rawProof: " "}, 400, "invalid_dpop_proof", "empty"},
		{"no proof for an API that requires DPoP", call{noDPoP: true, form: deftScope}, 400, "invalid_dpop_proof", "does not accept Bearer"},
		{"no proof for a client that requires DPoP", call{client: "strict-client", noDPoP: true}, 400, "invalid_dpop_proof", "a DPoP proof is required"},

		// Transport.
		{"oversized body", call{form: func(f url.Values) { f.Set("pad", strings.Repeat("x", 9000)) }}, 413, "invalid_request", "exceeds 8192 bytes"},
		{"repeated parameter", call{form: func(f url.Values) { f.Add("grant_type", "client_credentials") }}, 400, "invalid_request", "grant_type is given more than once"},
		{"GET", call{method: http.MethodGet}, 405, "invalid_request", "POST only"},
		{"JSON body", call{header: func(hd http.Header) { hd.Set("Content-Type", "application/json") }}, 400, "invalid_request", "content type"},
		{"no content type", call{header: func(hd http.Header) { hd.Del("Content-Type") }}, 400, "invalid_request", "content type"},
		{"malformed form", call{body: "a=%zz"}, 400, "invalid_request", "not a valid form"},

		// The grant.
		{"no grant_type", call{form: func(f url.Values) { f.Del("grant_type") }}, 400, "invalid_request", "grant_type is missing"},
		{"unsupported grant_type", call{form: func(f url.Values) { f.Set("grant_type", "password") }}, 400, "unsupported_grant_type", "password"},
		{"grant not allowed for the client", call{client: "code-only-client"}, 400, "unauthorized_client", "client_credentials"},
		{"scope not allowed", call{form: func(f url.Values) { f.Set("scope", "e-helse:sfm.api/sfm.api") }}, 400, "invalid_scope", "not allowed for this client"},
		{"identity scope", call{form: func(f url.Values) { f.Set("scope", "openid nhn:deft/api") }}, 400, "invalid_scope", "needs a user login"},
		{"offline_access", call{form: func(f url.Values) { f.Set("scope", "offline_access") }}, 400, "invalid_scope", "needs a user login"},
		{"unknown resource", call{form: func(f url.Values) { f.Set("resource", "nhn:unknown") }}, 400, "invalid_target", "not a known API"},
		{"two resources", call{form: func(f url.Values) { f["resource"] = []string{"nhn:deft", "test:bearer"} }}, 400, "invalid_target", "one resource"},
		// RFC 8707 §2: a resource the server will not issue a token for.
		{"resource the client has no scopes for", call{form: func(f url.Values) { f.Set("resource", servertest.SFMAudience) }}, 400, "invalid_target", "the client has no scopes for e-helse:sfm.api"},
		{"scopes of two APIs", call{form: func(f url.Values) { f.Set("scope", "nhn:deft/api test:bearer/read") }}, 400, "invalid_target", "several APIs"},
		{"scope and resource disagree", call{form: func(f url.Values) { f.Set("scope", "nhn:deft/api"); f.Set("resource", "test:bearer") }}, 400, "invalid_target", "not a scope of resource"},
		{"neither scope nor resource with scopes for two APIs", call{}, 400, "invalid_target", "name one API"},

		// Organisations (profile §6, HID codes).
		{"child not on the list", call{assertion: details(childDetail(servertest.OtherChild)), form: deftScope}, 400, "invalid_request", "HID-1002"},
		{"child number malformed", call{assertion: details(childDetail("12345")), form: deftScope}, 400, "invalid_request", "HID-1004"},
		{"child number with a bad check digit", call{assertion: details(childDetail("310900045")), form: deftScope}, 400, "invalid_request", "HID-1004"},
		{"child for a client without children", call{client: "nochild-client", assertion: details(childDetail(servertest.Child))}, 400, "invalid_request", "HID-1006"},
		{"parent that is not the client's", call{assertion: details(multiDetail("NO:ORGNR:" + servertest.Stranger + ":")), form: deftScope}, 400, "invalid_request", "HID-1001"},
		{"unknown identifier system", call{assertion: details(orgDetail("urn:oid:1.2.3", "ENH", servertest.Child)), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"identifier type not ENH", call{assertion: details(orgDetail("urn:oid:2.16.578.1.12.4.1.4.101", "XYZ", servertest.Child)), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"unknown details type", call{assertion: details(map[string]any{"type": "something_else"}), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"details neither object nor array", call{assertion: details("a string"), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"two helseid_authorization entries", call{assertion: details([]any{childDetail(servertest.Child), childDetail(servertest.Child)}), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"journal id that is not a UUID", call{client: "sfm-client", assertion: details(map[string]any{"type": "nhn:sfm:journal-id", "value": map[string]any{"journal_id": "42"}})}, 400, "invalid_request", "UUID"},
		{"multi-tenant client", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Customer + ":"))}, 400, "invalid_request", "has not delegated"},

		// Multi-tenant clients and the delegation registry (profile §6.1).
		{"multi-tenant client naming no organisation", call{client: "multi-client", form: deftScope}, 400, "invalid_request", "must name the organisation it acts for"},
		{"multi-tenant client naming only a child", call{client: "multi-client", assertion: details(childDetail(servertest.Child)), form: deftScope}, 400, "invalid_request", "names its parent organisation"},
		{"multi-tenant parent number malformed", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:31090007")), form: deftScope}, 400, "invalid_request", "HID-1004"},
		{"multi-tenant parent with a bad check digit", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:310900078:")), form: deftScope}, 400, "invalid_request", "HID-1004"},
		{"multi-tenant child number malformed", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Tenant + ":abc")), form: deftScope}, 400, "invalid_request", "HID-1004"},
		{"multi-tenant value without a parent", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:")), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"multi-tenant value with three numbers", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Tenant + ":" + servertest.Child + ":" + servertest.Child)), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"multi-tenant value without the NO:ORGNR prefix", call{client: "multi-client", assertion: details(multiDetail(servertest.Tenant)), form: deftScope}, 400, "invalid_request", "HID-1007"},
		{"multi-tenant organisation unknown to the registry", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Stranger)), form: deftScope}, 400, "invalid_request", "has not delegated"},
		{"multi-tenant organisation whose delegation is disabled", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Revoked + ":")), form: deftScope}, 400, "invalid_request", "has not delegated"},
		{"multi-tenant organisation that has not accepted the API's terms", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Tenant + ":")), form: func(f url.Values) { f.Set("scope", "test:bearer/read") }}, 400, "invalid_scope", "has not accepted the terms of use of test:bearer"},
		{"multi-tenant resource whose terms are not accepted", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Tenant)), form: func(f url.Values) { f.Set("resource", "test:bearer") }}, 400, "invalid_scope", "has not accepted the terms of use of test:bearer"},
		{"multi-tenant both details claims", call{client: "multi-client", assertion: func(h, c map[string]any) {
			c["assertion_details"] = multiDetail("NO:ORGNR:" + servertest.Tenant)
			c["authorization_details"] = multiDetail("NO:ORGNR:" + servertest.Tenant)
		}, form: deftScope}, 400, "invalid_request", "both assertion_details and authorization_details"},
		{"multi-tenant accepted terms of two APIs, scope omitted", call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.TenantAll))}, 400, "invalid_target", "name one API"},
		{"client_credentials for a client with only the refresh_token grant", call{client: "refresh-client", form: deftScope}, 400, "unauthorized_client", "client_credentials"},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.do(tt.call)
			fmt.Fprintf(&golden, "%s\n\t%d %s: %s\n", tt.name, r.status, r.code(), strings.NewReplacer(h.URL, "{issuer}", deftKey.KeyID, "{deft-client kid}").Replace(r.description()))
			if r.status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code(), r.description(), tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("error_description %q does not say %q", r.description(), tt.wantDesc)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Fatalf("Cache-Control %q", got)
			}
			if _, ok := r.body["access_token"]; ok {
				t.Fatal("an error response carries a token")
			}
			if tt.wantCode == "use_dpop_nonce" && r.header.Get("DPoP-Nonce") == "" {
				t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
			}
		})
	}
	// error_description is API (clients show it, some match on it): the
	// golden file pins every text. go test -run TestForgeOneFault -update
	// rewrites it.
	checkGolden(t, "testdata/forge.golden", golden.String())
}

var update = flag.Bool("update", false, "rewrite golden files")

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("error responses differ from %s (run with -update if the change is meant):\n%s", path, diffLines(string(want), got))
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "- %s\n+ %s\n", x, y)
		}
	}
	return out.String()
}

func deftScope(f url.Values) { f.Set("scope", "nhn:deft/api") }

func details(v any) func(h, c map[string]any) {
	return func(h, c map[string]any) { c["assertion_details"] = v }
}

func orgDetail(system, typ, value string) map[string]any {
	return map[string]any{"type": "helseid_authorization", "practitioner_role": map[string]any{
		"organization": map[string]any{"identifier": map[string]any{"system": system, "type": typ, "value": value}}}}
}

func childDetail(child string) map[string]any {
	return orgDetail("urn:oid:2.16.578.1.12.4.1.4.101", "ENH", child)
}

func multiDetail(value string) map[string]any {
	return orgDetail("urn:oid:1.0.6523", "ENH", value)
}

// tamper flips a character in the signature.
func tamper(jws string) string {
	b := []byte(jws)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
