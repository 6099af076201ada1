// Package servertest starts a real Tillit for tests: the real server wiring
// on an httptest server, a SQLite store in a temporary folder, real keys, and
// a registry whose client keys are generated for the test. Only the clock is
// fake.
package servertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"text/template"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
	"github.com/tillit-sts/tillit/internal/token"
	"github.com/tillit-sts/tillit/keyfile"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Options configure a test server.
type Options struct {
	// Settings is YAML for the server settings, added to the defaults the
	// harness writes (issuer, storage, key-encryption key).
	Settings string
	// Registry is the registry YAML. It may call {{jwks "client-id" "ES256"}}
	// to get the public JWKS of a key generated for that client (RS256,
	// PS256, ES256, ES384 or ES512). Empty means DefaultRegistry.
	Registry string
	// Clock defaults to a clock at a fixed time.
	Clock *Clock
	// Log receives the server's JSON log lines; nil discards them.
	Log io.Writer
	// Dir is the data folder; empty means a new t.TempDir().
	Dir string
	// Algorithm signs tokens: RS256 (default), PS256 or ES256.
	Algorithm string
	// Login takes over validated authorization requests; nil answers
	// them with temporarily_unavailable.
	Login authorize.Login
	// Storage, when set, is the storage URL (a PostgreSQL one from
	// pgtest.URL) the server opens itself, instead of SQLite in Dir.
	// Servers that share it and Dir (its key-encryption key) are
	// instances of one service; give each its own instance in Settings.
	Storage string
}

// Server is a running test server.
type Server struct {
	// URL is the issuer and the base URL.
	URL   string
	Srv   *server.Server
	HTTP  *httptest.Server
	Clock *Clock
	Store store.Store
	Dir   string
	keys  map[string]*jose.JSONWebKey
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	s, err := TryStart(t, opt)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return s
}

// TryStart is Start for a server that may refuse to start: it returns
// server.New's error instead of failing the test.
func TryStart(t testing.TB, opt Options) (*Server, error) {
	t.Helper()
	if opt.Clock == nil {
		opt.Clock = NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	}
	if opt.Registry == "" {
		opt.Registry = DefaultRegistry
	}
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	s := &Server{Clock: opt.Clock, Dir: opt.Dir, keys: map[string]*jose.JSONWebKey{}}
	kek := filepath.Join(opt.Dir, "kek")
	if _, err := os.Stat(kek); err != nil {
		if err := os.WriteFile(kek, []byte(keys.NewKEK()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.HTTP = httptest.NewUnstartedServer(nil)
	s.URL = "http://" + s.HTTP.Listener.Addr().String()

	registry := s.render(t, opt.Registry)
	storage := filepath.Join(opt.Dir, "tillit.db")
	if opt.Storage != "" {
		storage = opt.Storage
	}
	yml := "issuer: " + s.URL + "\nstorage: " + storage +
		"\nkeys:\n  encryption_key_file: " + kek + "\n"
	if opt.Algorithm != "" {
		yml += "  algorithm: " + opt.Algorithm + "\n"
	}
	yml += opt.Settings + "\n" + registry
	cfg, err := config.Parse(filepath.Join(opt.Dir, "tillit.yaml"), []byte(yml))
	if err != nil {
		t.Fatalf("servertest: config: %v", err)
	}
	ctx := context.Background()
	kekBytes, err := keys.ReadKEKFile(kek)
	if err != nil {
		t.Fatal(err)
	}
	auditKey, err := audit.DeriveKey(kekBytes)
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store
	if opt.Storage != "" {
		st, err = server.OpenAudit(ctx, opt.Storage, auditKey)
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(opt.Dir, "tillit.db"), sqlite.Options{AuditKey: auditKey, CommitDelay: cfg.CommitDelay})
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Store = st
	// Without a writer nothing is formatted at all, so benchmarks do not
	// pay for debug lines nobody reads.
	log := slog.New(slog.DiscardHandler)
	if opt.Log != nil {
		log = slog.New(slog.NewJSONHandler(opt.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(ctx, cfg, server.Options{Log: log, Now: opt.Clock.Now, Store: st, Login: opt.Login})
	if err != nil {
		st.Close()
		s.HTTP.Listener.Close()
		return nil, err
	}
	s.Srv = srv
	s.HTTP.Config.Handler = srv.Handler()
	s.HTTP.Start()
	t.Cleanup(func() {
		s.HTTP.Close()
		srv.Close()
		st.Close()
	})
	return s, nil
}

// RefreshToken stores the first refresh token of a new login of clientID
// and returns its value, as the authorization_code grant (a later release)
// will: bound to the DPoP key with RFC 7638 thumbprint jkt (empty for an
// unbound token), living the client's refresh_token_lifetime, or the
// default 10 h, from the clock's now. It writes to the store directly: only
// tests make logins this way, never a request to the server.
func (s *Server) RefreshToken(t testing.TB, clientID, jkt string, g token.RefreshGrant) string {
	t.Helper()
	ctx := context.Background()
	c, err := store.Get(ctx, s.Store, store.ClientKind, clientID)
	if err != nil {
		t.Fatalf("servertest: refresh token for %q: %v", clientID, err)
	}
	// The rule the login will enforce: refresh tokens only for clients
	// configured for them, and only with offline_access.
	if !slices.Contains(c.GrantTypes, "refresh_token") || !slices.Contains(g.Scopes, "offline_access") {
		t.Fatalf("servertest: %q gets no refresh token: it needs the refresh_token grant and the login offline_access", clientID)
	}
	lifetime := c.RefreshTokenLifetime
	if lifetime == 0 {
		lifetime = config.Default().Tokens.RefreshTokenLifetime
	}
	grant, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	value := token.NewRefreshTokenValue()
	now := s.Clock.Now()
	err = s.Store.CreateRefreshToken(ctx, store.RefreshToken{
		ID:        token.RefreshTokenID(value),
		FamilyID:  "family-" + token.NewRefreshTokenValue()[:16],
		ClientID:  clientID,
		JKT:       jkt,
		Grant:     grant,
		IssuedAt:  now,
		ExpiresAt: now.Add(lifetime),
	})
	if err != nil {
		t.Fatalf("servertest: refresh token for %q: %v", clientID, err)
	}
	return value
}

// Key is the private key generated for clientID.
func (s *Server) Key(t testing.TB, clientID string) *jose.JSONWebKey {
	t.Helper()
	k, ok := s.keys[clientID]
	if !ok {
		t.Fatalf("servertest: no key for %q", clientID)
	}
	return k
}

func (s *Server) render(t testing.TB, registry string) string {
	t.Helper()
	funcs := template.FuncMap{"jwks": func(clientID, alg string) (string, error) {
		k := newKey(t, clientID, jose.SignatureAlgorithm(alg))
		s.keys[clientID] = k
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{*keyfile.Public(k)}})
		return string(b), err
	}}
	tmpl, err := template.New("registry").Funcs(funcs).Parse(registry)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// RSA key generation is slow, so keys are made once per test binary and
// name; EC keys are cheap but cached the same way for symmetry.
var (
	keyMu    sync.Mutex
	keyCache = map[string]*jose.JSONWebKey{}
)

func newKey(t testing.TB, name string, alg jose.SignatureAlgorithm) *jose.JSONWebKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	id := name + "/" + string(alg)
	if k, ok := keyCache[id]; ok {
		return k
	}
	var k *jose.JSONWebKey
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		var rk *rsa.PrivateKey
		if rk, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			k, err = keyfile.FromKey(rk, alg)
		}
	case jose.ES256, jose.ES384, jose.ES512:
		curve := map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()}[alg]
		var ek *ecdsa.PrivateKey
		if ek, err = ecdsa.GenerateKey(curve, rand.Reader); err == nil {
			k, err = keyfile.FromKey(ek, alg)
		}
	default:
		t.Fatalf("servertest: alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	keyCache[id] = k
	return k
}

// Organisation numbers of DefaultRegistry (synthetic, valid mod 11).
const (
	Supplier   = "310900028"
	Customer   = "310900036"
	Child      = "310900044"
	OtherChild = "310900052"
	Stranger   = "310900060" // valid, not in the registry
	SFMID      = "6a0d3f3e-0a49-4b0e-9a56-1f8e8c1d2b3a"

	// Tenant has delegated to Supplier and accepted the terms of nhn:deft
	// only; TenantAll those of nhn:deft and test:bearer; Revoked's
	// delegation is disabled. Customer has delegated nothing.
	Tenant    = "310900079"
	TenantAll = "310900087"
	Revoked   = "310900095"
	// SFMOrg is the organisation behind the SFM API and its actor client.
	SFMOrg = "310900109"
)

// Audiences and scopes of the token exchange setup: the SFM API, owned by
// the client sfm-actor, exchanges tokens of sfm-client for the downstream
// Reseptformidleren API.
const (
	SFMAudience = "e-helse:sfm.api"
	RFAudience  = "e-helse:reseptformidleren"
	RFScope     = "e-helse:reseptformidleren/rf"
)

// DefaultRegistry covers the cases the token endpoint distinguishes.
const DefaultRegistry = `
apis:
  - audience: nhn:deft
    name: DEFT
    scopes: [nhn:deft/api]
    client_claims: [orgnr_supplier]
  - audience: e-helse:sfm.api
    name: SFM
    scopes: [e-helse:sfm.api/sfm.api]
    client_claims: [sfm-id, nhn:sfm:journal-id]
    owners: [sfm-actor, sfm-other-actor]
  - audience: e-helse:reseptformidleren
    name: Reseptformidleren
    scopes: [e-helse:reseptformidleren/rf]
    subject_claims: [e-helse:sfm.api/client/claims/sfm-id, nhn:sfm:journal-id]
  - audience: test:chain
    name: An API whose owner exchanges its tokens for itself, to build chains
    scopes: [test:chain/api]
    owners: [chain-actor]
    exchange_by_default: true
  - audience: test:bearer
    name: An API that allows Bearer tokens
    scopes: [test:bearer/read, test:bearer/write]
    allow_bearer: true
    access_token_lifetime: 5m
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
  - {number: "310900044", name: Customer child, parent: "310900036"}
  - {number: "310900052", name: Customer other child, parent: "310900036"}
  - {number: "310900079", name: Tenant}
  - {number: "310900087", name: Tenant that accepted every API}
  - {number: "310900095", name: Tenant whose delegation is disabled}
  - {number: "310900109", name: SFM}
client_systems:
  - {id: sys, name: Test EPJ, supplier: "310900028"}
  - {id: sfm-sys, name: SFM, supplier: "310900109"}
  - {id: deft-only, name: DEFT-only system, supplier: "310900028", apis: [nhn:deft]}
clients:
  - id: deft-client
    name: DEFT client
    system: sys
    organisation: "310900036"
    child_organisations: ["310900044"]
    scopes: [nhn:deft/api, test:bearer/read]
    jwks: {{jwks "deft-client" "ES256"}}
  - id: sfm-client
    name: SFM client
    system: sys
    organisation: "310900036"
    scopes: [e-helse:sfm.api/sfm.api]
    claims: {e-helse:sfm.api: {sfm-id: 6a0d3f3e-0a49-4b0e-9a56-1f8e8c1d2b3a}}
    exchange_actors: [sfm-actor]
    jwks: {{jwks "sfm-client" "ES256"}}
  - id: sfm-actor
    name: SFM's own client
    system: sfm-sys
    organisation: "310900109"
    grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [e-helse:reseptformidleren/rf]
    jwks: {{jwks "sfm-actor" "ES256"}}
  - id: sfm-other-actor
    name: Another owner of SFM that sfm-client does not allow
    system: sfm-sys
    organisation: "310900109"
    grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [e-helse:reseptformidleren/rf]
    jwks: {{jwks "sfm-other-actor" "ES256"}}
  - id: chain-actor
    name: Owner of test:chain
    system: sys
    organisation: "310900036"
    grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [test:chain/api, e-helse:reseptformidleren/rf]
    jwks: {{jwks "chain-actor" "ES256"}}
  - id: rsa-client
    name: RSA client
    system: sys
    organisation: "310900036"
    scopes: [nhn:deft/api]
    jwks: {{jwks "rsa-client" "RS256"}}
  - id: multi-client
    name: Multi-tenant client
    system: sys
    tenancy: multi-tenant
    grant_types: [client_credentials, refresh_token]
    scopes: [nhn:deft/api, test:bearer/read]
    jwks: {{jwks "multi-client" "ES256"}}
  - id: refresh-client
    name: Client with refresh tokens
    system: sys
    organisation: "310900036"
    child_organisations: ["310900044"]
    grant_types: [refresh_token]
    scopes: [nhn:deft/api, test:bearer/read]
    refresh_token_lifetime: 2h
    jwks: {{jwks "refresh-client" "ES256"}}
  - id: pending-client
    name: Pending client
    system: sys
    organisation: "310900036"
    scopes: [nhn:deft/api]
    status: pending
    jwks: {{jwks "pending-client" "ES256"}}
  - id: disabled-client
    name: Disabled client
    system: sys
    organisation: "310900036"
    scopes: [nhn:deft/api]
    status: disabled
    jwks: {{jwks "disabled-client" "ES256"}}
  - id: bearer-client
    name: Bearer client
    system: sys
    organisation: "310900036"
    scopes: [test:bearer/read, test:bearer/write]
    jwks: {{jwks "bearer-client" "ES256"}}
  - id: strict-client
    name: Client that requires DPoP
    system: sys
    organisation: "310900036"
    scopes: [test:bearer/read]
    require_dpop: true
    jwks: {{jwks "strict-client" "ES256"}}
  - id: deft-only-client
    name: Client of a DEFT-only system
    system: deft-only
    organisation: "310900036"
    scopes: [nhn:deft/api]
    jwks: {{jwks "deft-only-client" "ES256"}}
  - id: code-only-client
    name: Client for user login only
    system: sys
    organisation: "310900036"
    scopes: [nhn:deft/api]
    grant_types: [authorization_code]
    redirect_uris: [https://code-only.example/callback]
    identity_scopes: [openid]
    jwks: {{jwks "code-only-client" "ES256"}}
  - id: nochild-client
    name: Client without child organisations
    system: sys
    organisation: "310900036"
    scopes: [nhn:deft/api]
    jwks: {{jwks "nochild-client" "ES256"}}
identity_providers:
  - {name: upstream-oidc, type: oidc, display_name: An upstream provider}
delegations:
  - {organisation: "310900079", supplier: "310900028", apis: [nhn:deft]}
  - {organisation: "310900087", supplier: "310900028", apis: [nhn:deft, test:bearer]}
  - {organisation: "310900095", supplier: "310900028", apis: [nhn:deft], status: disabled}
`
