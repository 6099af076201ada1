package oidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/store"
)

// Bounds on what the provider sends and how long Tillit waits for it.
const (
	maxBody          = 1 << 20
	defaultTimeout   = 10 * time.Second
	discoveryMaxAge  = time.Hour
	defaultRefetch   = 5 * time.Minute
	stateLifetime    = 10 * time.Minute
	leeway           = time.Minute
	assertionLife    = time.Minute
	maxCallbackValue = 2048
)

// Algorithms are the ID token algorithms accepted: ID-porten signs with
// RS256; none and HMAC are never accepted.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.ES384}

// States keeps upstream-login state; store.Store is one.
type States interface {
	CreateUpstreamLogin(ctx context.Context, u store.UpstreamLogin) error
	ConsumeUpstreamLogin(ctx context.Context, now time.Time, id string) (store.UpstreamLogin, error)
}

// Config is one upstream provider.
type Config struct {
	// Name is the provider's name in the registry.
	Name     string
	Settings store.UpstreamOIDC
	// RedirectURI is Tillit's callback for this provider.
	RedirectURI string
	States      States
	// AllowSyntheticPID accepts synthetic national identity numbers (test
	// environments, where ID-porten's test users have them).
	AllowSyntheticPID bool
	// AssertionKey returns the private key that signs Tillit's client
	// assertions at the provider now, with kid and alg
	// (keys.Manager.UpstreamKey). Required for private_key_jwt; it is
	// asked at every request, so that a rotation counts at once.
	AssertionKey func(ctx context.Context) (*jose.JSONWebKey, error)
	// HTTPClient defaults to one with a 10 s timeout.
	HTTPClient *http.Client
	// RefetchInterval is the least time between two fetches of the key set
	// caused by an unknown kid; default 5 minutes.
	RefetchInterval time.Duration
	Now             func() time.Time
}

// Provider logs people in at one upstream provider. It is safe for
// concurrent use.
type Provider struct {
	cfg    Config
	secret string // client_secret_post; empty for private_key_jwt

	mu        sync.Mutex
	meta      *metadata
	metaAt    time.Time
	keys      *jose.JSONWebKeySet
	keysAt    time.Time
	refetched time.Time // when an unknown kid last refetched the keys
}

type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	// PAREndpoint, when the provider has one, is where Start pushes the
	// authorization request (RFC 9126).
	PAREndpoint string `json:"pushed_authorization_request_endpoint"`
}

// New reads the client credentials the settings refer to.
func New(cfg Config) (*Provider, error) {
	s := &cfg.Settings
	if s.Issuer == "" || s.ClientID == "" || cfg.RedirectURI == "" || cfg.States == nil {
		return nil, errors.New("oidc: issuer, client id, redirect URI and states are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.RefetchInterval == 0 {
		cfg.RefetchInterval = defaultRefetch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg}
	switch {
	case s.ClientAuth() == store.UpstreamAuthPrivateKeyJWT:
		if cfg.AssertionKey == nil {
			return nil, fmt.Errorf("oidc: %s: private_key_jwt without a key", cfg.Name)
		}
		return p, nil
	case s.ClientSecretEnv != "":
		p.secret = os.Getenv(s.ClientSecretEnv)
	case s.ClientSecretFile != "":
		b, err := os.ReadFile(s.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oidc: %s: client secret: %w", cfg.Name, err)
		}
		p.secret = string(bytes.TrimSpace(b))
	}
	if p.secret == "" {
		return nil, fmt.Errorf("oidc: %s: no client credentials", cfg.Name)
	}
	return p, nil
}

// Start begins a login: it stores the state, nonce and PKCE verifier with
// ret (what the caller needs when the person comes back) and returns the
// URL to send the browser to.
func (p *Provider) Start(ctx context.Context, ret []byte) (string, error) {
	m, err := p.metadata(ctx)
	if err != nil {
		return "", err
	}
	state, nonce, verifier := random(), random(), random()
	now := p.cfg.Now()
	if err := p.cfg.States.CreateUpstreamLogin(ctx, store.UpstreamLogin{
		ID: store.SecretID(state), IdP: p.cfg.Name, Nonce: nonce, CodeVerifier: verifier,
		Return: ret, CreatedAt: now, ExpiresAt: now.Add(stateLifetime),
	}); err != nil {
		return "", fmt.Errorf("oidc: store state: %w", err)
	}
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.cfg.Settings.ClientID},
		"redirect_uri":          {p.cfg.RedirectURI},
		"scope":                 {strings.Join(p.cfg.Settings.Scopes, " ")},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	if len(p.cfg.Settings.ACRValues) > 0 {
		q.Set("acr_values", strings.Join(p.cfg.Settings.ACRValues, " "))
	}
	if m.PAREndpoint != "" {
		// RFC 9126: the request goes to the provider authenticated, as the
		// token request does, and the browser carries only its handle.
		uri, err := p.push(ctx, m, q)
		if err != nil {
			return "", err
		}
		q = url.Values{"client_id": {p.cfg.Settings.ClientID}, "request_uri": {uri}}
	}
	sep := "?"
	if strings.Contains(m.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return m.AuthorizationEndpoint + sep + q.Encode(), nil
}

// AuthorizationOrigin is the origin of the provider's authorization
// endpoint, where Start sends the browser. A page whose form post is
// answered with that redirect must allow the origin in its CSP
// form-action: browsers apply it to the redirects after a post.
func (p *Provider) AuthorizationOrigin(ctx context.Context) (string, error) {
	m, err := p.metadata(ctx)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(m.AuthorizationEndpoint)
	if err != nil {
		return "", fmt.Errorf("oidc: authorization endpoint: %w", err)
	}
	return u.Scheme + "://" + u.Host, nil
}

// push sends the authorization request to the provider's PAR endpoint
// and returns its request_uri.
func (p *Provider) push(ctx context.Context, m *metadata, q url.Values) (string, error) {
	body, status, err := p.post(ctx, m, m.PAREndpoint, q)
	if err != nil {
		return "", fmt.Errorf("oidc: PAR endpoint: %w", err)
	}
	var pr struct {
		RequestURI  string `json:"request_uri"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	jerr := json.Unmarshal(body, &pr)
	// RFC 9126 §2.2: success is 201 Created.
	if status != http.StatusCreated && status != http.StatusOK {
		if jerr == nil && pr.Error != "" {
			return "", &ProviderError{Endpoint: "par", Code: pr.Error, Description: pr.Description}
		}
		return "", fmt.Errorf("oidc: PAR endpoint answered %d", status)
	}
	if jerr != nil || pr.RequestURI == "" || len(pr.RequestURI) > maxCallbackValue {
		return "", errors.New("oidc: PAR endpoint gave no usable request_uri")
	}
	return pr.RequestURI, nil
}

// Result is a completed upstream login.
type Result struct {
	Person identity.Person
	// Return is what Start was given.
	Return []byte
}

// Callback completes a login from the query the provider redirected the
// browser back with. Once the state is spent, the Result carries Return
// even when the login failed, so that the caller can answer the request
// the person was logging in for.
func (p *Provider) Callback(ctx context.Context, q url.Values) (*Result, error) {
	u, err := p.spend(ctx, q)
	if err != nil {
		return nil, err
	}
	res := &Result{Return: u.Return}
	person, err := p.complete(ctx, q, u)
	if err != nil {
		return res, err
	}
	res.Person = *person
	return res, nil
}

// spend checks the callback's parameters and spends its state.
func (p *Provider) spend(ctx context.Context, q url.Values) (store.UpstreamLogin, error) {
	for k, v := range q {
		if len(v) != 1 || len(v[0]) > maxCallbackValue && k != "code" || len(v[0]) > maxBody {
			return store.UpstreamLogin{}, fmt.Errorf("oidc: callback parameter %s repeated or too long", k)
		}
	}
	state := q.Get("state")
	if state == "" {
		return store.UpstreamLogin{}, ErrState
	}
	// The state is spent first, whatever the answer: an error response
	// ends the login as surely as a code does.
	u, err := p.cfg.States.ConsumeUpstreamLogin(ctx, p.cfg.Now(), store.SecretID(state))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrReplay) || err == nil && u.IdP != p.cfg.Name {
		return store.UpstreamLogin{}, ErrState
	}
	if err != nil {
		return store.UpstreamLogin{}, fmt.Errorf("oidc: spend state: %w", err)
	}
	return u, nil
}

// complete checks the provider's answer, redeems the code and validates
// the ID token.
func (p *Provider) complete(ctx context.Context, q url.Values, u store.UpstreamLogin) (*identity.Person, error) {
	// RFC 9207: when the provider names itself, it must be this one (a
	// mix-up attack sends another provider's answer here).
	if q.Has("iss") && q.Get("iss") != p.cfg.Settings.Issuer {
		return nil, ErrIssuer
	}
	if code := q.Get("error"); code != "" {
		return nil, &ProviderError{Endpoint: "authorization", Code: code, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return nil, ErrCode
	}
	raw, err := p.redeem(ctx, code, u.CodeVerifier)
	if err != nil {
		return nil, err
	}
	return p.verify(ctx, raw, u.Nonce)
}

// redeem exchanges the code at the token endpoint and returns the ID token.
func (p *Provider) redeem(ctx context.Context, code, verifier string) (string, error) {
	m, err := p.metadata(ctx)
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.cfg.RedirectURI},
		"code_verifier": {verifier},
		"client_id":     {p.cfg.Settings.ClientID},
	}
	body, status, err := p.post(ctx, m, m.TokenEndpoint, form)
	if err != nil {
		return "", fmt.Errorf("oidc: token endpoint: %w", err)
	}
	var tr struct {
		IDToken     string `json:"id_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	jerr := json.Unmarshal(body, &tr)
	if status != http.StatusOK {
		if jerr == nil && tr.Error != "" {
			return "", &ProviderError{Endpoint: "token", Code: tr.Error, Description: tr.Description}
		}
		return "", fmt.Errorf("oidc: token endpoint answered %d", status)
	}
	if jerr != nil || tr.IDToken == "" {
		return "", errors.New("oidc: token endpoint gave no id_token")
	}
	return tr.IDToken, nil
}

// post sends form to one of the provider's endpoints, authenticated as
// the client (private_key_jwt or client_secret_post), and returns the
// answer's body, bounded, and status.
func (p *Provider) post(ctx context.Context, m *metadata, endpoint string, form url.Values) ([]byte, int, error) {
	form.Set("client_id", p.cfg.Settings.ClientID)
	if p.secret == "" {
		a, err := p.assertion(ctx, m)
		if err != nil {
			return nil, 0, err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	} else {
		form.Set("client_secret", p.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return nil, 0, fmt.Errorf("answer unreadable or over %d bytes", maxBody)
	}
	return body, resp.StatusCode, nil
}

// assertionAlgorithms are the algorithms Tillit signs its assertions with.
var assertionAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// assertion is a private_key_jwt client assertion for the provider, with
// the kid of the key, which the operator registered there. Its audience
// is the issuer, as ID-porten asks.
func (p *Provider) assertion(ctx context.Context, m *metadata) (string, error) {
	key, err := p.cfg.AssertionKey(ctx)
	if err != nil {
		return "", fmt.Errorf("oidc: client assertion: %w", err)
	}
	alg := jose.SignatureAlgorithm(key.Algorithm)
	if key.IsPublic() || !slices.Contains(assertionAlgorithms, alg) {
		return "", fmt.Errorf("oidc: client assertion: key %s is not a private key for RS256, PS256 or ES256", key.KeyID)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("oidc: client assertion: %w", err)
	}
	now := p.cfg.Now()
	b, _ := json.Marshal(map[string]any{
		"iss": p.cfg.Settings.ClientID, "sub": p.cfg.Settings.ClientID, "aud": m.Issuer,
		"jti": random(), "iat": now.Unix(), "exp": now.Add(assertionLife).Unix(),
	})
	jws, err := s.Sign(b)
	if err != nil {
		return "", fmt.Errorf("oidc: client assertion: %w", err)
	}
	return jws.CompactSerialize()
}

// metadata returns the discovery document, fetched at most once an hour
// while it works.
func (p *Provider) metadata(ctx context.Context) (*metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta != nil && p.cfg.Now().Sub(p.metaAt) < discoveryMaxAge {
		return p.meta, nil
	}
	var m metadata
	if err := p.get(ctx, strings.TrimSuffix(p.cfg.Settings.Issuer, "/")+"/.well-known/openid-configuration", &m); err != nil {
		return nil, fmt.Errorf("oidc: discovery: %w", err)
	}
	// OpenID Connect Discovery §4.3.
	if m.Issuer != p.cfg.Settings.Issuer {
		return nil, fmt.Errorf("oidc: discovery names issuer %q, want %q", m.Issuer, p.cfg.Settings.Issuer)
	}
	endpoints := []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.JWKSURI}
	if m.PAREndpoint != "" { // optional
		endpoints = append(endpoints, m.PAREndpoint)
	}
	for _, e := range endpoints {
		if u, err := url.Parse(e); err != nil || u.Host == "" || u.Scheme != "https" && !(u.Scheme == "http" && strings.HasPrefix(p.cfg.Settings.Issuer, "http:")) {
			return nil, fmt.Errorf("oidc: discovery endpoint %q is not a URL like the issuer's", e)
		}
	}
	p.meta, p.metaAt = &m, p.cfg.Now()
	return p.meta, nil
}

// key finds the key that signed a token by kid, refetching the key set if
// it is not known and the last refetch is at least RefetchInterval ago.
func (p *Provider) key(ctx context.Context, kid string, alg jose.SignatureAlgorithm) (*jose.JSONWebKey, error) {
	m, err := p.metadata(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	fetch := p.keys == nil || now.Sub(p.keysAt) >= discoveryMaxAge
	for range 2 {
		if fetch {
			var set jose.JSONWebKeySet
			if err := p.get(ctx, m.JWKSURI, &set); err != nil {
				return nil, fmt.Errorf("oidc: jwks: %w", err)
			}
			p.keys, p.keysAt = &set, now
		}
		for i := range p.keys.Keys {
			k := &p.keys.Keys[i]
			if k.KeyID == kid && k.IsPublic() && k.Use != "enc" && (k.Algorithm == "" || k.Algorithm == string(alg)) {
				return k, nil
			}
		}
		if fetch || !p.refetched.IsZero() && now.Sub(p.refetched) < p.cfg.RefetchInterval {
			break
		}
		p.refetched, fetch = now, true
	}
	return nil, ErrUnknownKey
}

// get reads a JSON document, bounded in size; the caller holds p.mu.
func (p *Provider) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxBody {
		return fmt.Errorf("GET %s: over %d bytes", u, maxBody)
	}
	return json.Unmarshal(b, v)
}

// random is 256 bits from crypto/rand, base64url.
func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
