package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/keyfile"
)

var decodeTestNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// realAssertion is a client assertion made and signed by the client
// package, with assertion_details.
func realAssertion(t *testing.T) string {
	t.Helper()
	k, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c1", Key: k, Now: func() time.Time { return decodeTestNow }})
	if err != nil {
		t.Fatal(err)
	}
	org, err := helseid.NewMultiTenantOrganization("994598759", "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.ClientAssertion(org)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signJWT signs claims (JSON) with a fresh key: a real token whose content
// the test chooses.
func signJWT(t *testing.T, typ string, claims string) string {
	t.Helper()
	k, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withStdin(t *testing.T, r io.Reader) {
	t.Helper()
	old := decodeStdin
	decodeStdin = r
	t.Cleanup(func() { decodeStdin = old })
}

func TestDecodeAssertion(t *testing.T) {
	a := realAssertion(t)
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
	}{
		{name: "argument", args: []string{"decode", a}},
		{name: "standard input", args: []string{"decode"}, stdin: a + "\n"},
		{name: "dash", args: []string{"decode", "-"}, stdin: "  " + a + "\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			withStdin(t, strings.NewReader(tt.stdin))
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{
				"# Not verified: the signature is not checked",
				"# header\n{\n  \"alg\": \"ES256\",",
				`"typ": "client-authentication+jwt"`,
				"# claims\n{\n  \"iss\": \"c1\",",
				`"aud": "https://helseid-sts.test.nhn.no",`,
				`"value": "NO:ORGNR:994598759:"`,
				"# iat       2026-11-24T10:00:00Z (",
				"# nbf       2026-11-24T10:00:00Z (",
				"# exp       2026-11-24T10:00:10Z (expired ",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

func TestDecodeProof(t *testing.T) {
	k, err := keyfile.Generate(jose.PS256, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := keyfile.Signer(k)
	s, err := dpop.NewSigner(key, jose.PS256)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := s.Proof("POST", "https://sts.example/connect/token", dpop.ProofOptions{Nonce: "abc", Now: decodeTestNow})
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "decode", proof)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{`"typ": "dpop+jwt"`, `"jwk": {`, `"htu": "https://sts.example/connect/token"`, `"nonce": "abc"`, "# iat       2026-11-24T10:00:00Z"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestWriteDecoded(t *testing.T) {
	tests := []struct {
		name   string
		claims string
		want   []string
	}{
		{
			name:   "future expiry keeps member order and number form",
			claims: `{"exp":1795518000,"iat":1795514400,"big":12345678901234567890,"scope":["a","b"]}`,
			want: []string{
				"{\n  \"exp\": 1795518000,\n  \"iat\": 1795514400,\n  \"big\": 12345678901234567890,",
				"# iat       2026-11-24T10:00:00Z (now)\n# exp       2026-11-24T11:00:00Z (expires in 1h0m0s)\n",
			},
		},
		{
			name:   "iat as a string, as some HelseID samples send it",
			claims: `{"iat":"1795514340","nbf":1795514460,"auth_time":1795510800.5}`,
			want: []string{
				"# iat       2026-11-24T09:59:00Z (1m0s ago, written as a string)",
				"# nbf       2026-11-24T10:01:00Z (in 1m0s)",
				"# auth_time 2026-11-24T09:00:00Z (1h0m0s ago)",
			},
		},
		{
			name:   "not a time",
			claims: `{"exp":"soon","iat":-5,"nbf":null}`,
			want:   []string{"# exp       is not a time", "# iat       is not a time", "# nbf       is not a time"},
		},
		{
			name:   "no times",
			claims: `{"sub":"x"}`,
			want:   []string{"# claims\n{\n  \"sub\": \"x\"\n}\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeDecoded(&buf, json.RawMessage(`{"alg":"RS256","typ":"at+jwt"}`), json.RawMessage(tt.claims), decodeTestNow); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, buf.String())
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	valid := signJWT(t, "JWT", `{"sub":"x"}`)
	parts := strings.Split(valid, ".")
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStderr string
	}{
		{name: "nothing on standard input", args: []string{"decode"}, wantCode: 1, wantStderr: "tillit decode: no token given\n"},
		{name: "plain text", args: []string{"decode", "hello"}, wantCode: 1, wantStderr: "tillit decode: input is not a JWT: a signed JWT has three base64url parts separated by dots, this has 1\n"},
		{name: "JSON", args: []string{"decode"}, stdin: `{"access_token":"x"}`, wantCode: 1, wantStderr: "this has 1\n"},
		{name: "two parts", args: []string{"decode", "a.b"}, wantCode: 1, wantStderr: "this has 2\n"},
		{name: "encrypted", args: []string{"decode", "a.b.c.d.e"}, wantCode: 1, wantStderr: "tillit decode: input is an encrypted JWT (JWE); it cannot be read without the key\n"},
		{name: "header not base64url", args: []string{"decode", "a*b." + parts[1] + "." + parts[2]}, wantCode: 1, wantStderr: "tillit decode: input is not a JWT: the header is not base64url\n"},
		{name: "padded header", args: []string{"decode", parts[0] + "=." + parts[1] + "." + parts[2]}, wantCode: 1, wantStderr: "the header is not base64url\n"},
		{name: "header not an object", args: []string{"decode", b64([]byte(`["x"]`)) + "." + parts[1] + "." + parts[2]}, wantCode: 1, wantStderr: "tillit decode: input is not a JWT: the header is not a JSON object\n"},
		{name: "payload not JSON", args: []string{"decode", signJWT(t, "", "hello")}, wantCode: 1, wantStderr: "tillit decode: input is not a JWT: the payload is not a JSON object\n"},
		{name: "broken JSON payload", args: []string{"decode", parts[0] + "." + b64([]byte(`{"sub":`)) + "." + parts[2]}, wantCode: 1, wantStderr: "the payload is not a JSON object\n"},
		{name: "signature not base64url", args: []string{"decode", parts[0] + "." + parts[1] + ".!!"}, wantCode: 1, wantStderr: "tillit decode: input is not a JWT: the signature is not base64url\n"},
		{name: "too large", args: []string{"decode", "-"}, stdin: strings.Repeat("a", maxDecodeInput+1), wantCode: 1, wantStderr: "tillit decode: input is larger than 262144 bytes\n"},
		{name: "two tokens", args: []string{"decode", valid, valid}, wantCode: 2, wantStderr: "tillit decode: give one token, not 2\n"},
		{name: "unknown flag", args: []string{"decode", "--verify", valid}, wantCode: 2, wantStderr: "flag provided but not defined: -verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withStdin(t, strings.NewReader(tt.stdin))
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			if stdout != "" {
				t.Fatalf("stdout %q", stdout)
			}
		})
	}
}

// An unsecured JWT (alg none, empty signature) still decodes: decode shows
// what a token says, and the note says nothing was verified.
func TestDecodeUnsecured(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	tok := b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"sub":"x"}`)) + "."
	code, stdout, stderr := runCLI(t, "decode", tok)
	if code != 0 || !strings.Contains(stdout, `"alg": "none"`) || !strings.Contains(stdout, "# Not verified") {
		t.Fatalf("exit %d stdout %s stderr %s", code, stdout, stderr)
	}
}
