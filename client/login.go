package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
)

const (
	grantTypeAuthorizationCode = "authorization_code"
	scopeOpenID                = "openid"
	// maxJWKSSize bounds the issuer's key set; a few keys take a few KiB.
	maxJWKSSize = 256 << 10
	// idTokenLeeway is the clock skew allowed on an ID token's exp and iat.
	idTokenLeeway = time.Minute
)

// idTokenAlgorithms are the algorithms an ID token may be signed with:
// those an issuer of the profile signs tokens with. "none" and HMAC never.
var idTokenAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.ES512}

// AuthRequest is a user login: an authorization request pushed to the
// issuer (PAR, RFC 9126) before the browser is sent to it.
type AuthRequest struct {
	// RedirectURI is where the browser comes back with the code; it must
	// be registered for the client.
	RedirectURI string
	// Scopes are the identity and API scopes to ask for; openid is added
	// when missing. offline_access asks for a refresh token.
	Scopes []string
	// Resources are the APIs (RFC 8707) the login is for: name every one
	// that Login.Token will be asked for. The first token is for the
	// first of them; the others come from the refresh token.
	Resources []string
	// ACRValues are sent as acr_values, e.g. "Level4" or
	// "idp:testidp-oidc" to skip the choice of identity provider.
	ACRValues []string
	// Extra are further parameters of the request (prompt, max_age, the
	// TestIDP's test_pid). They cannot replace the ones the flow sets.
	Extra url.Values
	// Organization is the organisation the person acts for, as for a
	// machine's token (a child organisation, or a multi-tenant client's
	// customer); zero means the Client's default. It goes in the
	// assertion_details of the assertion that redeems the code, where the
	// issuer reads it, and stays with the login's refresh token.
	Organization Organization
}

// PendingLogin is a pushed authorization request waiting for the browser
// to come back. Keep it (server side, per browser) until the callback;
// it holds the PKCE verifier, state and nonce, which must not reach the
// browser.
type PendingLogin struct {
	c *Client
	// AuthURL is where to send the browser.
	AuthURL string
	// Expiry is when the pushed request expires at the issuer: the browser
	// must reach AuthURL before it.
	Expiry time.Time

	state, nonce, verifier, redirectURI string
	org                                 Organization
	resource                            string // the first of Resources
	// used makes Exchange once only: a code redeemed twice ends the login.
	used atomic.Bool
}

// State is the request's state parameter, for a caller that keeps
// pending logins by it.
func (p *PendingLogin) State() string { return p.state }

// PushAuthorization pushes an authorization request for r, with PKCE
// (S256), a random state and nonce, a client assertion and a DPoP proof
// of the Client's DPoP key, which binds the code (RFC 9449 §10), and
// returns where to send the browser.
func (c *Client) PushAuthorization(ctx context.Context, r AuthRequest) (*PendingLogin, error) {
	if r.RedirectURI == "" {
		return nil, errors.New("client: login: no redirect URI")
	}
	if err := checkScopes(r.Scopes); err != nil {
		return nil, err
	}
	md, err := c.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	if md.PushedAuthorizationRequestEndpoint == "" || md.AuthorizationEndpoint == "" {
		return nil, errors.New("client: login: the issuer has no pushed authorization request or authorization endpoint")
	}
	if err := checkURL(md.PushedAuthorizationRequestEndpoint, false); err != nil {
		return nil, fmt.Errorf("client: discovery: pushed_authorization_request_endpoint: %w", err)
	}
	scopes := slices.Clone(r.Scopes)
	if !slices.Contains(scopes, scopeOpenID) {
		scopes = append([]string{scopeOpenID}, scopes...)
	}
	org := r.Organization
	if orgIsZero(org) {
		org = c.org
	}
	if err := checkOrg(org, c.tenancy); err != nil {
		return nil, err
	}
	p := &PendingLogin{c: c, state: randomString(), nonce: randomString(), verifier: randomString(), redirectURI: r.RedirectURI, org: org}
	challenge := sha256.Sum256([]byte(p.verifier))
	form := url.Values{}
	for k, v := range r.Extra {
		form[k] = slices.Clone(v)
	}
	set := map[string]string{
		"client_id":             c.clientID,
		"response_type":         "code",
		"redirect_uri":          r.RedirectURI,
		"scope":                 strings.Join(scopes, " "),
		"state":                 p.state,
		"nonce":                 p.nonce,
		"code_challenge":        base64.RawURLEncoding.EncodeToString(challenge[:]),
		"code_challenge_method": "S256",
	}
	for k, v := range set {
		if form.Has(k) {
			return nil, fmt.Errorf("client: login: Extra may not set %s", k)
		}
		form.Set(k, v)
	}
	for _, k := range []string{"resource", "acr_values", "client_assertion", "client_assertion_type", "dpop_jkt", "request_uri"} {
		if form.Has(k) {
			return nil, fmt.Errorf("client: login: Extra may not set %s", k)
		}
	}
	form["resource"] = slices.Clone(r.Resources)
	if len(r.Resources) > 0 {
		p.resource = r.Resources[0]
	}
	if len(r.ACRValues) > 0 {
		form.Set("acr_values", strings.Join(r.ACRValues, " "))
	}

	sent := c.now()
	body, err := c.post(ctx, md.PushedAuthorizationRequestEndpoint, form, http.StatusCreated)
	if err != nil {
		return nil, fmt.Errorf("client: login: pushed authorization request: %w", err)
	}
	var pr struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &pr); err != nil || pr.RequestURI == "" {
		return nil, errors.New("client: login: the pushed authorization response has no request_uri")
	}
	if pr.ExpiresIn > 0 && pr.ExpiresIn < maxLifetimeSeconds {
		p.Expiry = sent.Add(time.Duration(pr.ExpiresIn) * time.Second)
	}
	au, err := url.Parse(md.AuthorizationEndpoint)
	if err != nil {
		return nil, fmt.Errorf("client: discovery: authorization_endpoint: %w", err)
	}
	q := au.Query()
	q.Set("client_id", c.clientID)
	q.Set("request_uri", pr.RequestURI)
	au.RawQuery = q.Encode()
	p.AuthURL = au.String()
	return p, nil
}

// post sends form with a client assertion and a DPoP proof to endpoint,
// does the use_dpop_nonce round trip, and returns the body of an answer
// with status want.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, want int) ([]byte, error) {
	nonce := c.lastNonce()
	for attempt := 1; ; attempt++ {
		assertion, err := c.ClientAssertion()
		if err != nil {
			return nil, err
		}
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("client_assertion_type", clientAssertionTypeJWTBearer)
		f.Set("client_assertion", assertion)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(f.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		proof, err := c.dpop.Proof(http.MethodPost, endpoint, dpop.ProofOptions{Nonce: nonce, Now: c.now()})
		if err != nil {
			return nil, err
		}
		req.Header.Set(headerDPoP, proof)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, unreachable(ctx, "request", err)
		}
		fresh := resp.Header.Get(headerDPoPNonce)
		body, err := readBody(resp.Body, maxTokenResponseSize)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if fresh != "" {
			c.setNonce(fresh)
		}
		if resp.StatusCode == want {
			return body, nil
		}
		e := newError(resp.StatusCode, body)
		if attempt == 1 && fresh != "" && e.Code == codeUseDPoPNonce && e.StatusCode == http.StatusBadRequest {
			nonce = fresh
			continue
		}
		return nil, e
	}
}

// Exchange completes the login with the query the browser brought to the
// redirect URI: it checks state and iss (RFC 9207), redeems the code with
// the PKCE verifier and a DPoP proof, and verifies the ID token. An error
// answer of the issuer (error=access_denied, say) comes back as *Error
// (StatusCode 0) once state and iss have been checked. A PendingLogin is
// for one callback: a second Exchange is refused.
func (p *PendingLogin) Exchange(ctx context.Context, q url.Values) (*Login, error) {
	if p.used.Swap(true) {
		return nil, errors.New("client: login: Exchange was called already")
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.state)) != 1 {
		return nil, errors.New("client: login: state does not match the request's")
	}
	// Tillit and HelseID send iss (RFC 9207): without it, or with another
	// issuer's, the code may come from a mix-up attack.
	if q.Get("iss") != p.c.issuer {
		return nil, fmt.Errorf("client: login: the callback's iss %q is not the issuer", q.Get("iss"))
	}
	if code := q.Get("error"); code != "" {
		return nil, &Error{Code: code, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return nil, errors.New("client: login: the callback has no code")
	}
	form := url.Values{
		"grant_type":    {grantTypeAuthorizationCode},
		"code":          {code},
		"redirect_uri":  {p.redirectURI},
		"code_verifier": {p.verifier},
	}
	var details []helseid.Detail
	d, err := orgDetail(p.org, p.c.tenancy)
	if err != nil {
		return nil, err
	}
	if d != nil {
		details = append(details, d)
	}
	tok, err := p.c.token(ctx, form, details, false)
	if err != nil {
		return nil, err
	}
	if tok.IDToken == "" {
		return nil, errors.New("client: login: the token response has no id_token")
	}
	claims, err := p.c.VerifyIDToken(ctx, tok.IDToken, p.nonce)
	if err != nil {
		return nil, err
	}
	l := &Login{c: p.c, resource: p.resource, First: tok, IDToken: tok.IDToken, Claims: claims, refresh: tok.RefreshToken,
		tokens: map[string]*TokenResponse{"": tok}}
	return l, nil
}

// IDClaims are the claims of a verified ID token. Raw has them all,
// HelseID's person claims (helseid://claims/identity/pid, …) among them.
type IDClaims struct {
	Issuer   string
	Subject  string
	Audience []string
	Expiry   time.Time
	IssuedAt time.Time
	Nonce    string
	SID      string
	Raw      map[string]any
}

// VerifyIDToken verifies an ID token of this Client's login: signed with
// an allowed algorithm by a key of the issuer's JWKS (jwks_uri of the
// discovery document, found by kid), with iss the issuer, this client in
// aud (and as azp when aud names others), not expired, and with nonce.
func (c *Client) VerifyIDToken(ctx context.Context, raw, nonce string) (*IDClaims, error) {
	tok, err := jwt.ParseSigned(raw, idTokenAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("client: id token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return nil, errors.New("client: id token: not one signature")
	}
	set, err := c.jwks(ctx)
	if err != nil {
		return nil, err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return nil, fmt.Errorf("client: id token: the issuer has no key %q", tok.Headers[0].KeyID)
	}
	var std jwt.Claims
	var all map[string]any
	var extra struct {
		Nonce string `json:"nonce"`
		AZP   string `json:"azp"`
		SID   string `json:"sid"`
	}
	if err := tok.Claims(keys[0].Key, &std, &all, &extra); err != nil {
		return nil, fmt.Errorf("client: id token: %w", err)
	}
	if std.Expiry == nil {
		return nil, errors.New("client: id token: no exp")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: c.issuer, AnyAudience: jwt.Audience{c.clientID}, Time: c.now()}, idTokenLeeway)
	if err != nil {
		return nil, fmt.Errorf("client: id token: %w", err)
	}
	if len(std.Audience) > 1 && extra.AZP != c.clientID {
		return nil, errors.New("client: id token: aud names other clients and azp is not this one")
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(extra.Nonce), []byte(nonce)) != 1 {
		return nil, errors.New("client: id token: nonce does not match the request's")
	}
	ic := &IDClaims{Issuer: std.Issuer, Subject: std.Subject, Audience: std.Audience, Expiry: std.Expiry.Time(),
		Nonce: extra.Nonce, SID: extra.SID, Raw: all}
	if std.IssuedAt != nil {
		ic.IssuedAt = std.IssuedAt.Time()
	}
	return ic, nil
}

// jwks reads the issuer's key set from the discovery document's jwks_uri.
func (c *Client) jwks(ctx context.Context) (*jose.JSONWebKeySet, error) {
	md, err := c.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkURL(md.JWKSURI, false); err != nil {
		return nil, fmt.Errorf("client: discovery: jwks_uri %q: %w", md.JWKSURI, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, md.JWKSURI, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unreachable(ctx, "jwks", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client: jwks: %s answered HTTP %d", md.JWKSURI, resp.StatusCode)
	}
	body, err := readBody(resp.Body, maxJWKSSize)
	if err != nil {
		return nil, fmt.Errorf("client: jwks: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("client: jwks: %w", err)
	}
	return &set, nil
}

// Login is a completed user login: its first tokens, the verified ID
// token, and the refresh token that gets more. It is safe for concurrent
// use: refreshes are made one at a time, since a refresh token spent
// twice ends the login.
type Login struct {
	c *Client
	// First is the token response of the code's redemption.
	First *TokenResponse
	// IDToken is the raw ID token, for EndSessionURL's id_token_hint.
	IDToken string
	// Claims are the ID token's claims.
	Claims *IDClaims

	resource string // the login's own API, for Token("")

	mu      sync.Mutex
	refresh string
	tokens  map[string]*TokenResponse // by resource; "" the login's own API
}

// RefreshToken is the login's newest refresh token; empty without
// offline_access.
func (l *Login) RefreshToken() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refresh
}

// Token returns an access token for resource (RFC 8707), or for the
// login's own API (the first of AuthRequest.Resources) when resource is
// empty: the one held, or, when it is
// near expiry (Config.ExpiryMargin) or there is none for resource yet, a
// new one from the refresh token, whose successor replaces it.
func (l *Login) Token(ctx context.Context, resource string) (*TokenResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.tokens[resource]; t != nil && l.c.now().Before(l.c.renewAt(t)) {
		return t, nil
	}
	if l.refresh == "" {
		return nil, errors.New("client: login: no refresh token (ask for offline_access)")
	}
	named := resource
	if named == "" {
		named = l.resource
	}
	t, err := l.c.Refresh(ctx, RefreshRequest{RefreshToken: l.refresh, Resource: named})
	if err != nil {
		return nil, err
	}
	if t.RefreshToken != "" {
		l.refresh = t.RefreshToken
	}
	l.tokens[resource] = t
	return t, nil
}

// Transport returns an http.RoundTripper that calls the API resource (""
// for the login's own) with the login's tokens from Token and a new DPoP
// proof per request, as Transport does for a TokenSource; base nil means
// http.DefaultTransport.
func (l *Login) Transport(resource string, base http.RoundTripper) http.RoundTripper {
	return loginTransport{l: l, resource: resource, base: base}
}

type loginTransport struct {
	l        *Login
	resource string
	base     http.RoundTripper
}

func (t loginTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.l.Token(req.Context(), t.resource)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.l.c.send(req, tok, t.base)
}

// EndSessionURL is where to send the browser to log the person out at the
// issuer (OpenID Connect RP-Initiated Logout), with the login's ID token
// as id_token_hint; postLogoutRedirectURI and state may be empty.
func (l *Login) EndSessionURL(ctx context.Context, postLogoutRedirectURI, state string) (string, error) {
	md, err := l.c.Metadata(ctx)
	if err != nil {
		return "", err
	}
	if md.EndSessionEndpoint == "" {
		return "", errors.New("client: the issuer has no end_session_endpoint")
	}
	u, err := url.Parse(md.EndSessionEndpoint)
	if err != nil {
		return "", fmt.Errorf("client: discovery: end_session_endpoint: %w", err)
	}
	q := u.Query()
	q.Set("id_token_hint", l.IDToken)
	q.Set("client_id", l.c.clientID)
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// randomString is 256 random bits, base64url: a state, nonce or PKCE
// verifier (RFC 7636 §4.1 asks for 43 to 128 characters).
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
