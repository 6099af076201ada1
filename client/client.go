package client

import (
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/keyfile"
)

// Lifetimes of client assertions (profile §2.3). HelseID refuses an
// assertion whose exp is more than 60 s ahead; NHN's .NET library uses 10 s.
// Short is better: an intercepted assertion is worth nothing after exp.
const (
	defaultAssertionLifetime = 10 * time.Second
	maxAssertionLifetime     = 60 * time.Second
)

// defaultMetadataMaxAge is how long a discovery document is used before it
// is read again: a day, as HelseID asks of its clients (FK2) and as NHN's
// libraries do.
const defaultMetadataMaxAge = 24 * time.Hour

// defaultHTTPTimeout bounds each request when Config.HTTPClient is nil, so a
// hung server cannot hold a caller that passed a context without a deadline.
const defaultHTTPTimeout = 30 * time.Second

// Bounds on what is read from a server. HelseID's discovery document is
// about 5 KiB and a token response a few KiB; the bounds leave room for
// large tokens while keeping a broken or hostile server from filling memory.
const (
	maxMetadataSize      = 512 << 10
	maxTokenResponseSize = 1 << 20
)

// defaultExpiryMargin is Config.ExpiryMargin when zero. HelseID's tokens
// live an hour; renewing 30 s early covers clock skew at the API and a slow
// network, and costs one token request in 120.
const defaultExpiryMargin = 30 * time.Second

// Config describes one HelseID client configuration.
type Config struct {
	// Issuer is the STS's issuer URL exactly as its discovery document
	// states it, e.g. "https://helseid-sts.test.nhn.no" (HelseID's has no
	// trailing slash). It is also the aud of every client assertion, as in
	// NHN's .NET and Java libraries. It must be https, or http to a loopback
	// address for local development.
	Issuer string
	// ClientID is the client_id, and the iss and sub of client assertions.
	ClientID string
	// Key is the client's private key. Its alg must be set, because it names
	// the algorithm the registered key is meant for (NHN's libraries refuse a
	// JWK without one); its kid, when set, goes in the assertion header.
	Key *jose.JSONWebKey
	// Algorithm, when set, is the algorithm Key signs assertions with,
	// for a JWK that has no alg; it must fit the key, and must equal the
	// JWK's alg if that is set. keyfile.ReadFile and keyfile.Parse read
	// keys from JWK or PEM files and strings.
	Algorithm jose.SignatureAlgorithm
	// DPoPKey signs DPoP proofs. Nil means Key, as NHN's libraries do; a
	// separate key keeps the long-lived client key out of every API call.
	// Without alg it signs with PS256 for RSA, and for EC with the ES
	// algorithm of its curve.
	DPoPKey *jose.JSONWebKey
	// GenerateDPoPKey makes a new P-256 DPoP key for this Client instead of
	// using DPoPKey or Key. Tokens are then bound to a key that exists only
	// in this process and dies with it: a token copied elsewhere is
	// useless. The cost is that tokens cannot be shared between processes.
	GenerateDPoPKey bool

	// Scopes and Resource are the defaults of token requests that name
	// neither.
	Scopes   []string
	Resource string
	// Tenancy says how an Organization is written in assertion_details.
	// Zero means SingleTenant.
	Tenancy Tenancy
	// Organization is the default organisation of token requests that
	// name none: a single-tenant client's child, or the organisation a
	// multi-tenant client acts for when it acts for one only.
	Organization Organization
	// ExpiryMargin is how long before a cached token expires a
	// TokenSource gets a new one, so that a token is not sent to an API in
	// its last seconds and refused on arrival. Zero means 30 s, which
	// covers clock skew at the API and a slow network; a token that lives
	// less than twice the margin is renewed half-way through its life.
	ExpiryMargin time.Duration
	// HTTPClient sends the requests. Nil means a client with a 30 s
	// timeout, so that a hung server cannot hold a caller whose context
	// has no deadline.
	HTTPClient *http.Client
	// Now is the clock for assertion and proof times and for the metadata
	// cache. Nil means time.Now. Tests set it; nothing else should.
	Now func() time.Time
	// MetadataMaxAge is how long the discovery document is used before it
	// is read again. Zero means a day, as HelseID asks of its clients.
	MetadataMaxAge time.Duration
	// AssertionLifetime is exp - iat of client assertions. Zero means
	// 10 s, as NHN's .NET library uses; at least a second, at most 60 s,
	// which HelseID refuses to exceed.
	AssertionLifetime time.Duration
}

// Client gets tokens for one client configuration from one issuer. It is
// safe for concurrent use. Make it once and share it: it caches the
// discovery document and the token endpoint's last DPoP nonce.
type Client struct {
	issuer     string
	clientID   string
	alg        jose.SignatureAlgorithm
	assertion  jose.Signer
	dpop       *dpop.Signer
	http       *http.Client
	now        func() time.Time
	lifetime   time.Duration
	margin     time.Duration
	metaMaxAge time.Duration

	scopes   []string
	resource string
	tenancy  Tenancy
	org      Organization

	// sources is the token cache: one entry per kind of token request.
	// sourceCount counts its entries; when a new one takes it past
	// sweepAt, entries that hold no valid token are dropped (sweepSources).
	sources     sync.Map // sourceKey → *sourceEntry
	sourceCount atomic.Int64
	// exchangeCount counts the entries of exchanges, at most maxExchanges
	// but for those made during a sweep.
	exchangeCount atomic.Int64
	sweepAt       atomic.Int64
	sweeping      sync.Mutex
	// apiNonces are the DPoP nonces APIs gave, per origin.
	apiNonces nonceCache

	mu          sync.Mutex
	meta        *Metadata
	metaExpires time.Time
	// nonce is the last DPoP-Nonce the token endpoint sent. A stale one
	// costs one use_dpop_nonce round trip, a fresh one saves it.
	nonce string
}

// New checks cfg and returns a Client. It does no I/O: the discovery
// document is read on first use.
func New(cfg Config) (*Client, error) {
	if err := checkURL(cfg.Issuer, true); err != nil {
		return nil, fmt.Errorf("client: issuer %q: %w", cfg.Issuer, err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("client: no client ID")
	}
	if cfg.Key == nil {
		return nil, errors.New("client: no key")
	}
	key, err := keyfile.Signer(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("client: key: %w", err)
	}
	alg := jose.SignatureAlgorithm(cfg.Key.Algorithm)
	switch {
	case cfg.Algorithm != "" && alg != "" && cfg.Algorithm != alg:
		return nil, fmt.Errorf("client: Algorithm %s differs from the key's alg %s", cfg.Algorithm, alg)
	case cfg.Algorithm != "":
		alg = cfg.Algorithm
	case alg == "":
		return nil, errors.New("client: key has no alg")
	}
	if err := jws.CheckKey(alg, key.Public()); err != nil {
		return nil, fmt.Errorf("client: key: %w", err)
	}
	assertion, err := newAssertionSigner(alg, key, cfg.Key.KeyID)
	if err != nil {
		return nil, err
	}

	dk := cfg.DPoPKey
	dalg := jose.SignatureAlgorithm("")
	switch {
	case cfg.GenerateDPoPKey && dk != nil:
		return nil, errors.New("client: GenerateDPoPKey and DPoPKey exclude each other")
	case cfg.GenerateDPoPKey:
		if dk, err = keyfile.Generate(jose.ES256, 0); err != nil {
			return nil, fmt.Errorf("client: DPoP key: %w", err)
		}
	case dk == nil:
		dk, dalg = cfg.Key, alg
	}
	if dalg == "" {
		dalg = jose.SignatureAlgorithm(dk.Algorithm)
	}
	dkey, err := keyfile.Signer(dk)
	if err != nil {
		return nil, fmt.Errorf("client: DPoP key: %w", err)
	}
	proofs, err := dpop.NewSigner(dkey, dalg)
	if err != nil {
		return nil, fmt.Errorf("client: DPoP key: %w", err)
	}

	tenancy := cfg.Tenancy
	if tenancy == "" {
		tenancy = SingleTenant
	}
	if err := checkOrg(cfg.Organization, tenancy); err != nil {
		return nil, err
	}
	if err := checkScopes(cfg.Scopes); err != nil {
		return nil, err
	}
	metaMaxAge := cfg.MetadataMaxAge
	switch {
	case metaMaxAge == 0:
		metaMaxAge = defaultMetadataMaxAge
	case metaMaxAge < 0:
		return nil, fmt.Errorf("client: metadata max age %v is negative", metaMaxAge)
	}
	margin := cfg.ExpiryMargin
	switch {
	case margin == 0:
		margin = defaultExpiryMargin
	case margin < 0:
		return nil, fmt.Errorf("client: expiry margin %v is negative", margin)
	}

	lifetime := cfg.AssertionLifetime
	switch {
	case lifetime == 0:
		lifetime = defaultAssertionLifetime
	case lifetime < time.Second || lifetime > maxAssertionLifetime:
		return nil, fmt.Errorf("client: assertion lifetime %v is not between 1s and %v", lifetime, maxAssertionLifetime)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{
		issuer:     cfg.Issuer,
		clientID:   cfg.ClientID,
		alg:        alg,
		assertion:  assertion,
		dpop:       proofs,
		http:       hc,
		now:        now,
		lifetime:   lifetime,
		margin:     margin,
		metaMaxAge: metaMaxAge,
		scopes:     append([]string(nil), cfg.Scopes...),
		resource:   cfg.Resource,
		tenancy:    tenancy,
		org:        cfg.Organization,
	}
	c.sweepAt.Store(minSweep)
	return c, nil
}

// DPoPThumbprint is the RFC 7638 thumbprint of the DPoP key: the cnf.jkt
// that DPoP-bound tokens issued to this client carry.
func (c *Client) DPoPThumbprint() string { return c.dpop.Thumbprint() }

func newAssertionSigner(alg jose.SignatureAlgorithm, key crypto.Signer, kid string) (jose.Signer, error) {
	// A JSONWebKey as signing key puts its kid in the protected header.
	opts := (&jose.SignerOptions{}).WithType(assertionType)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return nil, fmt.Errorf("client: key: %w", err)
	}
	return s, nil
}

// checkURL accepts an absolute https URL, or an http URL to a loopback
// address: tokens and assertions must not cross a network in clear text,
// but a developer's STS on localhost has no certificate. An issuer may not
// have a query (OpenID Connect Discovery §3); no URL may have a fragment or
// user information.
func checkURL(raw string, issuer bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return errors.New("plain http is allowed only to a loopback address")
	default:
		return errors.New("not an https URL")
	}
	switch {
	case u.Host == "":
		return errors.New("URL has no host")
	case u.User != nil:
		return errors.New("URL has user information")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("URL has a fragment")
	case issuer && (u.RawQuery != "" || u.ForceQuery):
		return errors.New("issuer has a query")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
