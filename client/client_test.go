package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/keyfile"
)

// testNow is the fixed clock of the tests: the Now func is the only fake.
var testNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://helseid-sts.test.nhn.no"
	testClientID = "8cd7c619-92db-4d55-89e2-383b75efc758"
)

// Generating RSA keys is slow; each algorithm's key is made once per run.
var (
	keysMu sync.Mutex
	keys   = map[jose.SignatureAlgorithm]*jose.JSONWebKey{}
)

func testKey(t *testing.T, alg jose.SignatureAlgorithm) *jose.JSONWebKey {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[alg]; ok {
		return k
	}
	k, err := keyfile.Generate(alg, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys[alg] = k
	return k
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.ClientID == "" {
		cfg.ClientID = testClientID
	}
	if cfg.Key == nil {
		cfg.Key = testKey(t, jose.PS256)
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	es := testKey(t, jose.ES256)
	ps := testKey(t, jose.PS256)
	pub := keyfile.Public(es)
	noAlg := *es
	noAlg.Algorithm = ""
	wrongAlg := *es
	wrongAlg.Algorithm = "RS256"
	hs := *es
	hs.Algorithm = "HS256"
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakJWK := &jose.JSONWebKey{Key: weak, Algorithm: "RS256"}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224JWK := &jose.JSONWebKey{Key: p224}

	valid := Config{Issuer: testIssuer, ClientID: testClientID, Key: es}
	with := func(f func(*Config)) Config {
		c := valid
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "valid", cfg: valid},
		{name: "separate DPoP key", cfg: with(func(c *Config) { c.DPoPKey = ps })},
		{name: "DPoP key without alg gets the default", cfg: with(func(c *Config) { c.DPoPKey = &noAlg })},
		{name: "http to localhost", cfg: with(func(c *Config) { c.Issuer = "http://localhost:8080" })},
		{name: "http to 127.0.0.1", cfg: with(func(c *Config) { c.Issuer = "http://127.0.0.1:8080" })},
		{name: "http to ::1", cfg: with(func(c *Config) { c.Issuer = "http://[::1]:8080" })},
		{name: "issuer with path and trailing slash", cfg: with(func(c *Config) { c.Issuer = "https://sts.example/tenant/" })},
		{name: "60 s assertions", cfg: with(func(c *Config) { c.AssertionLifetime = time.Minute })},

		{name: "no issuer", cfg: with(func(c *Config) { c.Issuer = "" }), wantErr: `client: issuer "": not an https URL`},
		{name: "plain http to another host", cfg: with(func(c *Config) { c.Issuer = "http://sts.example" }), wantErr: `client: issuer "http://sts.example": plain http is allowed only to a loopback address`},
		{name: "relative issuer", cfg: with(func(c *Config) { c.Issuer = "helseid-sts.nhn.no" }), wantErr: `client: issuer "helseid-sts.nhn.no": not an https URL`},
		{name: "issuer with query", cfg: with(func(c *Config) { c.Issuer = "https://sts.example?x=1" }), wantErr: `client: issuer "https://sts.example?x=1": issuer has a query`},
		{name: "issuer with fragment", cfg: with(func(c *Config) { c.Issuer = "https://sts.example#x" }), wantErr: `client: issuer "https://sts.example#x": URL has a fragment`},
		{name: "issuer with user", cfg: with(func(c *Config) { c.Issuer = "https://me@sts.example" }), wantErr: `client: issuer "https://me@sts.example": URL has user information`},
		{name: "issuer without host", cfg: with(func(c *Config) { c.Issuer = "https:///x" }), wantErr: `client: issuer "https:///x": URL has no host`},
		{name: "no client ID", cfg: with(func(c *Config) { c.ClientID = "" }), wantErr: "client: no client ID"},
		{name: "no key", cfg: with(func(c *Config) { c.Key = nil }), wantErr: "client: no key"},
		{name: "public key", cfg: with(func(c *Config) { c.Key = pub }), wantErr: "client: key: keyfile: not a private RSA or EC key"},
		{name: "key without alg", cfg: with(func(c *Config) { c.Key = &noAlg }), wantErr: "client: key has no alg"},
		{name: "alg that does not fit the key", cfg: with(func(c *Config) { c.Key = &wrongAlg }), wantErr: "client: key: alg RS256 does not fit an EC key"},
		{name: "symmetric alg", cfg: with(func(c *Config) { c.Key = &hs }), wantErr: "client: key: alg HS256 does not fit an EC key"},
		{name: "weak RSA key", cfg: with(func(c *Config) { c.Key = weakJWK }), wantErr: "client: key: RSA key of 1024 bits is shorter than 2048"},
		{name: "public DPoP key", cfg: with(func(c *Config) { c.DPoPKey = pub }), wantErr: "client: DPoP key: keyfile: not a private RSA or EC key"},
		{name: "DPoP key on P-224", cfg: with(func(c *Config) { c.DPoPKey = p224JWK }), wantErr: "client: DPoP key: dpop: unsupported key type *ecdsa.PublicKey"},
		{name: "assertion lifetime too long", cfg: with(func(c *Config) { c.AssertionLifetime = 61 * time.Second }), wantErr: "client: assertion lifetime 1m1s is not between 1s and 1m0s"},
		{name: "assertion lifetime negative", cfg: with(func(c *Config) { c.AssertionLifetime = -time.Second }), wantErr: "client: assertion lifetime -1s is not between 1s and 1m0s"},
		{name: "assertion lifetime below a second", cfg: with(func(c *Config) { c.AssertionLifetime = time.Millisecond }), wantErr: "client: assertion lifetime 1ms is not between 1s and 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DPoPThumbprint() == "" {
				t.Fatal("no DPoP thumbprint")
			}
		})
	}
}

func TestDPoPKeyDefaultsToClientKey(t *testing.T) {
	k := testKey(t, jose.ES256)
	c := newTestClient(t, Config{Key: k})
	if c.DPoPThumbprint() != k.KeyID {
		t.Fatalf("DPoP thumbprint %q, want the client key's %q", c.DPoPThumbprint(), k.KeyID)
	}
	other := testKey(t, jose.ES384)
	c = newTestClient(t, Config{Key: k, DPoPKey: other})
	if c.DPoPThumbprint() != other.KeyID {
		t.Fatalf("DPoP thumbprint %q, want the DPoP key's %q", c.DPoPThumbprint(), other.KeyID)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"code and description", &Error{Code: "invalid_request", Description: "HID-1002: child organisation is not on the client's list", StatusCode: 400},
			"client: token endpoint answered HTTP 400: invalid_request: HID-1002: child organisation is not on the client's list"},
		{"code only", &Error{Code: "invalid_client", StatusCode: 401}, "client: token endpoint answered HTTP 401: invalid_client"},
		{"no OAuth error", &Error{StatusCode: 502}, "client: token endpoint answered HTTP 502 without an OAuth error"},
		{"control characters dropped", &Error{Code: "invalid\x1b[2J_scope", Description: "bad\r\nscope\x07", StatusCode: 400},
			"client: token endpoint answered HTTP 400: invalid[2J_scope: badscope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if strings.ContainsAny(tt.err.Error(), "\x1b\r\n\x07") {
				t.Fatal("control character in error text")
			}
		})
	}
}

func TestErrorHIDCode(t *testing.T) {
	tests := []struct {
		name, desc, want string
	}{
		{"code and text", "HID-1002: child organisation is not on the client's list", "HID-1002"},
		{"code alone", "HID-1007", "HID-1007"},
		{"no code", "scope is not allowed", ""},
		{"prefix without digits", "HID-: x", ""},
		{"code later in the text", "see HID-1002", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (&Error{Description: tt.desc}).HIDCode(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
