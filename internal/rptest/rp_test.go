// Package rptest logs a person in at a running tillit serve with
// third-party OpenID Connect libraries (coreos/go-oidc and
// golang.org/x/oauth2), unmodified but for the issuer URL. It imports no
// Tillit package: what a relying party sees is the wire.
package rptest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// The registry the server is configured with.
const (
	clientID = "rp-web"
	audience = "nhn:rp-api"
	apiScope = "nhn:rp-api/read"
	pid      = "06828399789"
	idpName  = "testidp-oidc"
)

// server is a running tillit serve process.
type server struct {
	issuer string
	key    *ecdsa.PrivateKey // the client's
	log    *output
}

type output struct {
	mu   sync.Mutex
	text strings.Builder
}

func (o *output) add(s string) {
	o.mu.Lock()
	o.text.WriteString(s + "\n")
	o.mu.Unlock()
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// start writes a test configuration whose one login client redirects to
// redirectURI, and runs tillit serve on it until t ends.
func start(t *testing.T, redirectURI string) *server {
	t.Helper()
	if err := lookAtSources(); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := (&jose.JSONWebKey{Key: &key.PublicKey, KeyID: "rp-1", Algorithm: "ES256", Use: "sig"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// go-oidc insists that the issuer is the URL discovery was fetched
	// from, so the port is chosen before the server starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	issuer := "http://" + addr

	dir := t.TempDir()
	doc := fmt.Sprintf(`environment: test
issuer: %s
listen: %s
storage: %q
log:
  format: json
apis:
  - audience: %s
    name: RP API
    scopes: [%s]
    # x/oauth2 sends no DPoP proofs.
    allow_bearer: true
organisations:
  - number: "310202029"
    name: Leverandør AS
  - number: "310303038"
    name: Legesenter AS
client_systems:
  - id: epj
    name: EPJ
    supplier: "310202029"
clients:
  - id: %s
    name: Third-party web client
    system: epj
    organisation: "310303038"
    grant_types: [authorization_code, refresh_token]
    scopes: [%s]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid, helseid://scopes/identity/security_level]
    redirect_uris: [%s]
    require_par: false
    jwks: {"keys": [%s]}
identity_providers:
  - name: %s
    type: testidp
    display_name: Test login
persons:
  - pid: "%s"
    given_name: Kvart
    family_name: Grevling
`, issuer, addr, filepath.Join(dir, "tillit.db"), audience, apiScope, clientID, apiScope, redirectURI, pub, idpName, pid)
	config := filepath.Join(dir, "tillit.yaml")
	if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	kek := make([]byte, 32)
	rand.Read(kek)
	cmd := exec.Command(tillitBin, "serve", "--config", config)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TILLIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TILLIT_KEY_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(kek))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{issuer: issuer, key: key, log: &output{}}
	serving := make(chan struct{}, 1)
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			s.log.add(sc.Text())
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "tillit is serving" {
				serving <- struct{}{}
			}
		}
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("tillit serve log:\n%s", s.log)
		}
	})
	select {
	case <-serving:
	case <-exited:
		t.Fatalf("tillit serve exited: %v\n%s", cmd.ProcessState, s.log)
	case <-time.After(time.Minute):
		t.Fatalf("tillit serve did not start within a minute\n%s", s.log)
	}
	return s
}

// sign makes a JWT of the client's, signed with its key.
func (s *server) sign(t *testing.T, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", "rp-1")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// callback is the relying party's redirect URI: it keeps what the login
// sent back.
type callback struct {
	mu    sync.Mutex
	query url.Values
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.query = r.URL.Query()
	c.mu.Unlock()
	io.WriteString(w, "logged in")
}

func (c *callback) got() url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.query
}

// TestThirdPartyRelyingParty logs a person in with go-oidc and
// x/oauth2: discovery, a PKCE authorization request with a signed
// request object, the browser's redirects (TestIDP automation, no page),
// the code redeemed with a private_key_jwt assertion, the ID token
// verified against the JWKS, and userinfo with the access token.
func TestThirdPartyRelyingParty(t *testing.T) {
	cb := &callback{}
	rp := httptest.NewServer(cb)
	defer rp.Close()
	redirectURI := rp.URL + "/callback"
	srv := start(t, redirectURI)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, srv.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		IdPs []string `json:"available_idps"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if len(meta.IdPs) != 1 || meta.IdPs[0] != idpName {
		t.Errorf("available_idps = %v, want [%s]", meta.IdPs, idpName)
	}
	conf := oauth2.Config{
		ClientID:    clientID,
		Endpoint:    provider.Endpoint(),
		RedirectURL: redirectURI,
		Scopes:      []string{oidc.ScopeOpenID, "profile", "helseid://scopes/identity/pid", "helseid://scopes/identity/security_level", apiScope},
	}

	// The authorization request, its parameters repeated in a request
	// object signed with the client's key (RFC 9101), as HelseID's web
	// samples send them.
	verifier := oauth2.GenerateVerifier()
	state, nonce := randomString(t), randomString(t)
	now := time.Now()
	request := srv.sign(t, "oauth-authz-req+jwt", map[string]any{
		"iss":                   clientID,
		"aud":                   srv.issuer,
		"client_id":             clientID,
		"jti":                   randomString(t),
		"iat":                   now.Unix(),
		"exp":                   now.Add(30 * time.Second).Unix(),
		"response_type":         "code",
		"redirect_uri":          redirectURI,
		"scope":                 strings.Join(conf.Scopes, " "),
		"state":                 state,
		"nonce":                 nonce,
		"code_challenge":        oauth2.S256ChallengeFromVerifier(verifier),
		"code_challenge_method": "S256",
		"acr_values":            "idp:" + idpName,
		"test_pid":              pid,
		"test_security_level":   "4",
	})
	authURL := conf.AuthCodeURL(state,
		oauth2.S256ChallengeOption(verifier),
		oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("request", request))

	// The browser: follows the redirects and keeps the session cookie.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/callback" {
		t.Fatalf("the login ended at %s with %d, not at the callback:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	q := cb.got()
	if e := q.Get("error"); e != "" {
		t.Fatalf("the login returned error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("iss") != srv.issuer {
		t.Fatalf("iss = %q, want %q (RFC 9207)", q.Get("iss"), srv.issuer)
	}
	found := false
	for _, c := range jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(srv.issuer, "http://"), Path: "/"}) {
		found = found || c.Name == "tillit-session"
	}
	if !found {
		t.Error("the browser got no session cookie")
	}

	// The code, redeemed with a private_key_jwt assertion. x/oauth2 first
	// tries Basic with the client's id and an empty secret, which Tillit
	// accepts together with the assertion.
	assertion := srv.sign(t, "client-authentication+jwt", map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": srv.issuer,
		"jti": randomString(t),
		"iat": now.Unix(),
		"exp": now.Add(30 * time.Second).Unix(),
	})
	tok, err := conf.Exchange(ctx, q.Get("code"),
		oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", assertion))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") {
		t.Errorf("token_type = %q, want Bearer", tok.TokenType)
	}
	rawID, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("the token response has no id_token")
	}

	idToken, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idToken.Nonce != nonce {
		t.Errorf("ID token nonce = %q, want %q", idToken.Nonce, nonce)
	}
	if len(idToken.Subject) != 44 {
		t.Errorf("ID token sub = %q: want the 44-character pseudonym", idToken.Subject)
	}
	var idClaims struct {
		PID  string `json:"helseid://claims/identity/pid"`
		Name string `json:"name"`
	}
	if err := idToken.Claims(&idClaims); err != nil {
		t.Fatal(err)
	}
	if idClaims.PID != pid || idClaims.Name != "Kvart Grevling" {
		t.Errorf("ID token pid, name = %q, %q; want %q, %q", idClaims.PID, idClaims.Name, pid, "Kvart Grevling")
	}
	// A verifier for another client must refuse it: the check can fail.
	if _, err := provider.Verifier(&oidc.Config{ClientID: "another"}).Verify(ctx, rawID); err == nil {
		t.Error("an ID token for rp-web verified for another client")
	}

	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != idToken.Subject {
		t.Errorf("userinfo sub = %q, ID token sub = %q", info.Subject, idToken.Subject)
	}
	var infoClaims struct {
		PID           string `json:"helseid://claims/identity/pid"`
		SecurityLevel string `json:"helseid://claims/identity/security_level"`
		Name          string `json:"name"`
	}
	if err := info.Claims(&infoClaims); err != nil {
		t.Fatal(err)
	}
	if infoClaims.PID != pid || infoClaims.SecurityLevel != "4" || infoClaims.Name != "Kvart Grevling" {
		t.Errorf("userinfo pid, security_level, name = %q, %q, %q", infoClaims.PID, infoClaims.SecurityLevel, infoClaims.Name)
	}

	// The code is single use: the same exchange again is refused.
	again := srv.sign(t, "client-authentication+jwt", map[string]any{
		"iss": clientID, "sub": clientID, "aud": srv.issuer, "jti": randomString(t),
		"iat": now.Unix(), "exp": now.Add(30 * time.Second).Unix(),
	})
	_, err = conf.Exchange(ctx, q.Get("code"),
		oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", again))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("second exchange of the code: %v, want invalid_grant", err)
	}
}
