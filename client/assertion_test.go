package client

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/keyfile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// verifyAssertion checks an assertion with plain go-jose, as a server would,
// and returns its header and raw claims.
func verifyAssertion(t *testing.T, assertion string, key *jose.JSONWebKey) (jose.Header, map[string]json.RawMessage) {
	t.Helper()
	alg := jose.SignatureAlgorithm(key.Algorithm)
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse assertion: %v", err)
	}
	var std jwt.Claims
	raw := map[string]json.RawMessage{}
	if err := tok.Claims(key.Public().Key, &std, &raw); err != nil {
		t.Fatalf("verify assertion: %v", err)
	}
	// The claims are valid at the time they were made for.
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      testClientID,
		Subject:     testClientID,
		AnyAudience: jwt.Audience{testIssuer},
		Time:        testNow,
	}, 0)
	if err != nil {
		t.Fatalf("validate assertion claims: %v", err)
	}
	return tok.Headers[0], raw
}

func TestClientAssertion(t *testing.T) {
	algs := []jose.SignatureAlgorithm{jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.ES256, jose.ES384, jose.ES512}
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			key := testKey(t, alg)
			c := newTestClient(t, Config{Key: key})
			a, err := c.ClientAssertion()
			if err != nil {
				t.Fatal(err)
			}
			h, claims := verifyAssertion(t, a, key)
			if h.Algorithm != string(alg) {
				t.Errorf("alg %q", h.Algorithm)
			}
			if h.KeyID != key.KeyID {
				t.Errorf("kid %q, want %q", h.KeyID, key.KeyID)
			}
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != "client-authentication+jwt" {
				t.Errorf("typ %v", typ)
			}
			if h.JSONWebKey != nil {
				t.Error("assertion embeds its key: a server must never trust it")
			}
			want := map[string]string{
				"iss": `"` + testClientID + `"`,
				"sub": `"` + testClientID + `"`,
				"aud": `"` + testIssuer + `"`, // a string, not an array, as NHN's libraries send it
				"iat": "1795514400",
				"nbf": "1795514400",
				"exp": "1795514410", // the default assertion lifetime
			}
			for name, v := range want {
				if string(claims[name]) != v {
					t.Errorf("%s = %s, want %s", name, claims[name], v)
				}
			}
			var jti string
			if err := json.Unmarshal(claims["jti"], &jti); err != nil || len(jti) < 22 {
				t.Errorf("jti %s is not 128 random bits", claims["jti"])
			}
			if _, ok := claims[helseid.ClaimAssertionDetails]; ok {
				t.Error("assertion_details without details")
			}
			if len(claims) != 7 {
				t.Errorf("claims %v: want exactly iss sub aud iat nbf exp jti", claims)
			}
		})
	}
}

func TestClientAssertionIsFreshEachTime(t *testing.T) {
	c := newTestClient(t, Config{Key: testKey(t, jose.ES256)})
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		a, err := c.ClientAssertion()
		if err != nil {
			t.Fatal(err)
		}
		_, claims := verifyAssertion(t, a, testKey(t, jose.ES256))
		jti := string(claims["jti"])
		if seen[jti] {
			t.Fatalf("jti %s repeated", jti)
		}
		seen[jti] = true
	}
}

func TestClientAssertionLifetime(t *testing.T) {
	key := testKey(t, jose.ES256)
	c := newTestClient(t, Config{Key: key, AssertionLifetime: maxAssertionLifetime})
	a, err := c.ClientAssertion()
	if err != nil {
		t.Fatal(err)
	}
	_, claims := verifyAssertion(t, a, key)
	if got := string(claims["exp"]); got != "1795514460" {
		t.Fatalf("exp %s, want iat + 60", got)
	}
}

// TestClientAssertionFailsOtherKeys makes sure the signature is real: the
// assertion must not verify with another key of the same type, nor parse
// under another algorithm.
func TestClientAssertionFailsOtherKeys(t *testing.T) {
	c := newTestClient(t, Config{Key: testKey(t, jose.ES256)})
	a, err := c.ClientAssertion()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	other, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(other.Public().Key, &claims); err == nil {
		t.Fatal("assertion verified with a key that did not sign it")
	}
	if _, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Fatal("assertion parsed under an algorithm it was not signed with")
	}
}

// The golden files hold the assertion_details claim of real, verified
// assertions, indented. They pin the shapes NHN's libraries send.
func TestClientAssertionDetailsGolden(t *testing.T) {
	must := func(d helseid.Detail, err error) helseid.Detail {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	child := must(helseid.NewChildOrganization("313231593"))
	parent := must(helseid.NewMultiTenantOrganization("994598759", ""))
	parentChild := must(helseid.NewMultiTenantOrganization("994598759", "313231593"))
	journal := must(helseid.NewSFMJournalID("a99abfb4-2bea-4e0a-bb03-38e37febbd2c"))

	tests := []struct {
		name    string
		details []helseid.Detail
	}{
		{"single-tenant-child", []helseid.Detail{child}},
		{"multi-tenant-parent", []helseid.Detail{parent}},
		{"multi-tenant-parent-child", []helseid.Detail{parentChild}},
		{"sfm-journal-id", []helseid.Detail{journal}},
		{"multi-tenant-parent-and-journal-id", []helseid.Detail{parent, journal}},
		{"single-tenant-child-and-journal-id", []helseid.Detail{child, journal}},
	}
	key := testKey(t, jose.ES256)
	c := newTestClient(t, Config{Key: key})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := c.ClientAssertion(tt.details...)
			if err != nil {
				t.Fatal(err)
			}
			_, claims := verifyAssertion(t, a, key)
			raw, ok := claims[helseid.ClaimAssertionDetails]
			if !ok {
				t.Fatal("no assertion_details")
			}
			if _, ok := claims[helseid.ClaimAuthorizationDetails]; ok {
				t.Fatal("authorization_details next to assertion_details: HelseID refuses both")
			}
			var got bytes.Buffer
			if err := json.Indent(&got, raw, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			path := filepath.Join("testdata", "assertion_details", tt.name+".golden.json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("assertion_details differ from %s:\ngot\n%s\nwant\n%s", path, got.Bytes(), want)
			}
			// And the server side reads back what the client wrote.
			parsed, err := helseid.ParseDetails(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(parsed) != len(tt.details) {
				t.Fatalf("parsed %d entries, sent %d", len(parsed), len(tt.details))
			}
		})
	}
}

func TestClientAssertionDetailsErrors(t *testing.T) {
	c := newTestClient(t, Config{Key: testKey(t, jose.ES256)})
	if _, err := c.ClientAssertion(nil); err == nil || err.Error() != "client: assertion details: helseid: nil assertion detail" {
		t.Fatalf("err = %v", err)
	}
}
