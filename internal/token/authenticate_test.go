package token_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
