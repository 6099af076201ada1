package token_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/token"
)

// basic is an Authorization header of the Basic scheme (RFC 7617) with the
// given user-id and password, as sent: not form-encoded here.
func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// percentEncoded encodes every byte of s, which a form decoder turns back
// into s (RFC 6749 §2.3.1 form-encodes the client_id in Basic).
func percentEncoded(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestEmptyBasicSecretWithAssertion: clients that send Authorization:
// Basic with their own client_id and an empty secret next to their client
// assertion (golang.org/x/oauth2, several .NET clients) are authenticated by
// the assertion at every endpoint, as HelseID does. A secret, another
// client's id or anything else in the header is still a second
// authentication method.
func TestEmptyBasicSecretWithAssertion(t *testing.T) {
	h := start(t)
	sfmToken := sfmSubject(h)
	type send func(t *testing.T, header func(http.Header)) result
	endpoints := []struct {
		name   string
		client string
		send   send
		// ok checks a successful answer.
		ok func(r result) bool
	}{
		{"token", "deft-client", func(t *testing.T, header func(http.Header)) result {
			h.t = t
			return h.do(call{header: header, form: func(f url.Values) { f.Set("scope", "nhn:deft/api") }})
		}, func(r result) bool { return r.body["access_token"] != nil }},
		{"introspection", "sfm-actor", func(t *testing.T, header func(http.Header)) result {
			h.t = t
			return h.post(token.IntrospectionPath, endpointCall{client: "sfm-actor", form: tokenParam(sfmToken), header: header})
		}, func(r result) bool { return r.body["active"] == true }},
		{"revocation", "refresh-client", func(t *testing.T, header func(http.Header)) result {
			h.t = t
			return h.post(token.RevocationPath, endpointCall{client: "refresh-client", form: tokenParam("not-a-token-of-this-service"), header: header})
		}, func(r result) bool { return r.body == nil }},
	}
	set := func(v string) func(string, http.Header) {
		return func(_ string, hd http.Header) { hd.Set("Authorization", v) }
	}
	tests := []struct {
		name       string
		header     func(client string, hd http.Header)
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		{"client_id and an empty secret", func(c string, hd http.Header) { hd.Set("Authorization", basic(c, "")) }, 200, "", ""},
		{"client_id form-encoded", func(c string, hd http.Header) { hd.Set("Authorization", basic(percentEncoded(c), "")) }, 200, "", ""},
		{"scheme in lower case", func(c string, hd http.Header) {
			hd.Set("Authorization", "basic"+strings.TrimPrefix(basic(c, ""), "Basic"))
		}, 200, "", ""},

		{"a secret", func(c string, hd http.Header) { hd.Set("Authorization", basic(c, "s")) }, 400, "invalid_request", "more than one client authentication method"},
		{"a form-encoded secret", func(c string, hd http.Header) { hd.Set("Authorization", basic(c, "%20")) }, 400, "invalid_request", "more than one client authentication method"},
		{"another client's id", set(basic("rsa-client", "")), 400, "invalid_request", "more than one client authentication method"},
		{"no client_id", set(basic("", "")), 400, "invalid_request", "more than one client authentication method"},
		{"no colon", func(c string, hd http.Header) {
			hd.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c)))
		}, 400, "invalid_request", "more than one client authentication method"},
		{"not base64", set("Basic %%%"), 400, "invalid_request", "more than one client authentication method"},
		{"client_id not form-encoded right", func(c string, hd http.Header) { hd.Set("Authorization", basic(c+"%zz", "")) }, 400, "invalid_request", "more than one client authentication method"},
		{"Bearer scheme", set("Bearer abc"), 400, "invalid_request", "more than one client authentication method"},
		{"two Authorization headers", func(c string, hd http.Header) {
			hd.Add("Authorization", basic(c, ""))
			hd.Add("Authorization", basic(c, "s"))
		}, 400, "invalid_request", "more than one client authentication method"},
	}
	for _, ep := range endpoints {
		for _, tt := range tests {
			t.Run(ep.name+"/"+tt.name, func(t *testing.T) {
				r := ep.send(t, func(hd http.Header) { tt.header(ep.client, hd) })
				if r.status != tt.wantStatus || r.code() != tt.wantCode {
					t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code(), r.description(), tt.wantStatus, tt.wantCode)
				}
				if tt.wantStatus == 200 && !ep.ok(r) {
					t.Fatalf("answer %v", r.body)
				}
				if !strings.Contains(r.description(), tt.wantDesc) {
					t.Fatalf("error_description %q does not say %q", r.description(), tt.wantDesc)
				}
			})
		}
	}
}

// TestAssertionAlgPinnedByKey: a client key registered with an alg
// verifies assertions of that alg only (RFC 7517 §4.4). An assertion
// signed RS256 with a key registered for PS256 is not the client's, though
// the same RSA key made the signature.
func TestAssertionAlgPinnedByKey(t *testing.T) {
	registry := strings.Replace(servertest.DefaultRegistry, `{{jwks "rsa-client" "RS256"}}`, `{{jwks "rsa-client" "PS256"}}`, 1)
	if registry == servertest.DefaultRegistry {
		t.Fatal("the default registry has no RS256 key for rsa-client to pin to PS256")
	}
	h := start(t, servertest.Options{Registry: registry})
	if alg := h.Key(t, "rsa-client").Algorithm; alg != "PS256" {
		t.Fatalf("rsa-client key alg %q, want PS256", alg)
	}
	scope := func(f url.Values) { f.Set("scope", "nhn:deft/api") }
	tests := []struct {
		name       string
		assertion  func(h, c map[string]any)
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		{"PS256, as registered", nil, 200, "", ""},
		{"RS256 by the same key", func(hd, c map[string]any) { hd["alg"] = "RS256" }, 401, "invalid_client", `no registered key of the client has kid`},
		{"RS256 by the same key, no kid", func(hd, c map[string]any) { hd["alg"] = "RS256"; delete(hd, "kid") }, 401, "invalid_client", "no registered key of the client fits alg RS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.do(call{client: "rsa-client", assertion: tt.assertion, form: scope})
			if r.status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code(), r.description(), tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(r.description(), tt.wantDesc) {
				t.Fatalf("error_description %q does not say %q", r.description(), tt.wantDesc)
			}
		})
	}
}

// TestReplayWindowCoversClockSkew: an assertion is accepted until the clock
// skew after its exp, so its jti must be remembered that long. Sent again
// after exp but within the skew it is refused as used; once the skew is
// over too, as expired.
func TestReplayWindowCoversClockSkew(t *testing.T) {
	const skew = 10 * time.Second // config.Default's client_assertion.clock_skew
	h := start(t)
	scope := func(f url.Values) { f.Set("scope", "nhn:deft/api") }
	exp := h.Clock.Now().Add(30 * time.Second)
	first := h.do(call{form: scope, assertion: func(hd, c map[string]any) { c["exp"] = exp.Unix() }})
	if first.status != 200 {
		t.Fatalf("first use: %d %v", first.status, first.body)
	}
	// A fresh assertion that expired as long ago passes: the skew is
	// there, and only the replay check stands in the way of the old one.
	h.Clock.Advance(exp.Sub(h.Clock.Now()) + skew - time.Second)
	if r := h.do(call{form: scope, assertion: func(hd, c map[string]any) { c["exp"] = exp.Unix() }}); r.status != 200 {
		t.Fatalf("a fresh assertion %v after its exp: %d %v", skew-time.Second, r.status, r.body)
	}
	if r := h.do(call{form: scope, rawAssertion: first.assertion}); r.status != 401 || r.code() != "invalid_client" || r.description() != "client_assertion was already used (jti)" {
		t.Fatalf("the used assertion %v after its exp: %d %s (%s), want 401 invalid_client, already used", skew-time.Second, r.status, r.code(), r.description())
	}
	h.Clock.Advance(time.Second)
	if r := h.do(call{form: scope, rawAssertion: first.assertion}); r.status != 401 || r.code() != "invalid_client" || r.description() != "client_assertion has expired" {
		t.Fatalf("the used assertion %v after its exp: %d %s (%s), want 401 invalid_client, expired", skew, r.status, r.code(), r.description())
	}
}
