package resource

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jws"
)

// Defaults of Config.
const (
	// defaultLeeway is the clock skew allowed on exp and nbf: NHN asks for
	// "a few seconds" at most (profile §10.3).
	defaultLeeway = 5 * time.Second
	// maxLeeway bounds Config.Leeway: more would keep expired tokens alive.
	maxLeeway = time.Minute
	// defaultKeyRefreshInterval is the least time between two reads of the
	// issuer's keys. A token with an unknown kid waits at most this long
	// for a key the STS has just started to sign with; a flood of tokens
	// with made-up kids costs the STS one request per interval.
	defaultKeyRefreshInterval = time.Minute
	// defaultKeysMaxAge is how long keys are used before they are read
	// again, so that a key the STS withdrew stops verifying. Tillit
	// publishes keys a day before they sign, so an hour loses nothing.
	defaultKeysMaxAge = time.Hour
	// defaultTokenCache is Config.TokenCache when zero: room for the
	// tokens of a few thousand clients, about 10 MiB at most.
	defaultTokenCache = 4096
	// defaultHTTPTimeout bounds each read of discovery or keys when
	// Config.HTTPClient is nil.
	defaultHTTPTimeout = 10 * time.Second
)

// maxTokenSize bounds the access token parsed. HelseID's tokens are about
// 1.5 KiB; a token with many claims stays far below this.
const maxTokenSize = 16 << 10

// Config describes one API, or one route kind of an API.
type Config struct {
	// Issuer is the STS's issuer exactly as its discovery document states
	// it; iss must equal it. Required.
	Issuer string
	// Audience is the API's audience ("kortnavn"), e.g. "nhn:deft"; aud
	// must contain it. Required.
	Audience string
	// SingleAudience also refuses tokens with any other audience, as NHN
	// recommends APIs to do.
	SingleAudience bool
	// Scopes must all be in the token's scope, or the request gets 403
	// insufficient_scope. For scopes that differ by route, use
	// RequireScopes on those routes.
	Scopes []string

	// Algorithms are the JWS algorithms accepted for access tokens. Nil
	// means RS, PS and ES, 256 to 512; never none or HS*.
	Algorithms []jose.SignatureAlgorithm
	// DPoPAlgorithms are those accepted for DPoP proofs, and announced in
	// WWW-Authenticate algs. Nil means the same default as Algorithms.
	DPoPAlgorithms []jose.SignatureAlgorithm
	// Leeway is the clock skew allowed on exp and nbf. Zero means 5 s, as
	// NHN asks for "a few seconds" at most; at most a minute, since more
	// would keep expired tokens alive.
	Leeway time.Duration
	// ProofWindow is how far a proof's iat may be from now, either way.
	// Zero means dpop.DefaultWindow (60 s). A proof's jti is remembered
	// for as long as the proof could pass, so a shorter window also means
	// a smaller replay cache.
	ProofWindow time.Duration

	// PublicURL is the URL clients use to reach this API, when that is not
	// what the server sees: behind a reverse proxy that terminates TLS or
	// rewrites the host. A proof's htu is then compared with PublicURL's
	// scheme and host, and its path followed by the request's path (with
	// PublicURL "https://api.example.no/deft", a request for /files is
	// compared with "https://api.example.no/deft/files"). Empty means the
	// request's own Host and, by r.TLS, scheme. X-Forwarded-* headers are
	// never trusted: anyone can send them.
	PublicURL string
	// Nonces, when set, makes proofs carry a nonce from this source
	// (RFC 9449 §9): a proof without one gets 401 use_dpop_nonce with a
	// DPoP-Nonce header, and every successful answer carries a fresh
	// nonce. NewNonces makes one for a single instance; instances of one
	// API share a key with SharedNonces.
	Nonces *dpop.Nonces
	// Replay remembers accepted proofs. Nil means NewMemoryReplayCache(0),
	// which is right for one instance; instances behind one load balancer
	// must share one cache.
	Replay ReplayCache

	// TokenCache is how many verified access tokens are remembered, so
	// that a client that sends one token with many requests (HelseID's
	// live an hour) costs one token signature check, not one per request;
	// the proof is still checked every time. A token is remembered until
	// it expires or KeysMaxAge has passed, whichever is first. Zero means
	// 4096, room for the tokens of a few thousand clients in about 10 MiB
	// at most; a negative number turns the cache off.
	TokenCache int

	// InsecureBearer makes the validator serve a Bearer route instead of
	// a DPoP one: a token is accepted without a proof, so whoever copies
	// it can use it. HelseID allows this only on a route of its own with a
	// scope of its own (profile §3.5); a DPoP-bound token is refused here,
	// and a validator never accepts both schemes.
	InsecureBearer bool

	// HTTPClient reads discovery and keys. Nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// KeyRefreshInterval is the least time between two reads of the
	// issuer's keys. A token with an unknown kid waits at most this long
	// for a key the STS has just started to sign with; a flood of tokens
	// with made-up kids costs the STS one request per interval. Zero
	// means a minute.
	KeyRefreshInterval time.Duration
	// KeysMaxAge is how long keys are used before they are read again, so
	// that a key the STS withdrew stops verifying. Zero means an hour.
	KeysMaxAge time.Duration
	// Now is the clock. Nil means time.Now; tests set it.
	Now func() time.Time
	// OnError, when set, is told of every refused request, for logging:
	// the package never logs. err is an *Error; it never holds the token.
	OnError func(r *http.Request, err error)
}

// Validator checks requests to an API. It is safe for concurrent use.
type Validator struct {
	issuer   string
	audience string
	single   bool
	scopes   []string
	algs     []jose.SignatureAlgorithm
	leeway   time.Duration
	bearer   bool
	public   *url.URL
	proofs   dpop.Verifier
	nonces   *dpop.Nonces
	replay   ReplayCache
	keys     *keySet
	now      func() time.Time
	onError  func(*http.Request, error)
	algNames string
	tokens   *tokenCache // nil when off
}

// New checks cfg and returns a Validator. It does no I/O: keys are read on
// first use, or by Refresh.
func New(cfg Config) (*Validator, error) {
	if err := checkURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("resource: issuer %q: %w", cfg.Issuer, err)
	}
	if cfg.Audience == "" {
		return nil, errors.New("resource: no audience")
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, fmt.Errorf("resource: scope %q is empty or has white space or quotes", s)
		}
	}
	algs := cfg.Algorithms
	if algs == nil {
		algs = jws.Algorithms
	}
	palgs := cfg.DPoPAlgorithms
	if palgs == nil {
		palgs = jws.Algorithms
	}
	for _, list := range [][]jose.SignatureAlgorithm{algs, palgs} {
		if len(list) == 0 {
			return nil, errors.New("resource: empty algorithm list")
		}
		for _, a := range list {
			if !slices.Contains(jws.Algorithms, a) {
				return nil, fmt.Errorf("resource: algorithm %q is not an asymmetric JWS algorithm", a)
			}
		}
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = defaultLeeway
	case leeway < 0 || leeway > maxLeeway:
		return nil, fmt.Errorf("resource: leeway %v is not between 0 and %v", leeway, maxLeeway)
	}
	if cfg.ProofWindow < 0 {
		return nil, fmt.Errorf("resource: proof window %v is negative", cfg.ProofWindow)
	}
	var public *url.URL
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("resource: public URL %q is not an http(s) URL without query, fragment or user", cfg.PublicURL)
		}
		public = u
	}
	if cfg.InsecureBearer && cfg.Nonces != nil {
		return nil, errors.New("resource: nonces are for DPoP proofs; a Bearer route has none")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	interval := cfg.KeyRefreshInterval
	if interval <= 0 {
		interval = defaultKeyRefreshInterval
	}
	maxAge := cfg.KeysMaxAge
	if maxAge <= 0 {
		maxAge = defaultKeysMaxAge
	}
	replay := cfg.Replay
	if replay == nil && !cfg.InsecureBearer {
		replay = NewMemoryReplayCache(0)
	}
	var tokens *tokenCache
	switch {
	case cfg.TokenCache == 0:
		tokens = newTokenCache(defaultTokenCache, maxAge)
	case cfg.TokenCache > 0:
		tokens = newTokenCache(cfg.TokenCache, maxAge)
	}
	return &Validator{
		tokens:   tokens,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		single:   cfg.SingleAudience,
		scopes:   slices.Clone(cfg.Scopes),
		algs:     algs,
		leeway:   leeway,
		bearer:   cfg.InsecureBearer,
		public:   public,
		proofs:   dpop.Verifier{Algorithms: palgs, Window: cfg.ProofWindow, Nonces: cfg.Nonces},
		nonces:   cfg.Nonces,
		replay:   replay,
		keys:     &keySet{issuer: cfg.Issuer, http: hc, now: now, interval: interval, maxAge: maxAge},
		now:      now,
		onError:  cfg.OnError,
		algNames: strings.Join(jws.AlgorithmNames(palgs), " "),
	}, nil
}

// Refresh reads the issuer's keys now, if the refresh interval allows, so
// that an API can check at start-up that it reaches its STS. Requests do
// not need it.
func (v *Validator) Refresh(ctx context.Context) error {
	v.keys.mu.Lock()
	_, err := v.keys.refreshLocked(ctx, v.keys.cur.Load())
	v.keys.mu.Unlock()
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	return nil
}

// Validate checks the request's access token and, on a DPoP route, its
// proof: everything in profile §10.3 and §3.5. It returns the token's
// claims, or an *Error that says what to answer. A proof is recorded as
// used only when every check has passed, so a refused request spends
// nothing.
func (v *Validator) Validate(r *http.Request) (*Claims, error) {
	c, _, err := v.validate(r)
	return c, err
}

// validate is Validate that also returns the token it checked.
func (v *Validator) validate(r *http.Request) (*Claims, string, error) {
	now := v.now()
	token, err := v.credentials(r)
	if err != nil {
		return nil, "", err
	}
	var proof string
	if !v.bearer {
		// Counted before any signature is checked: it costs nothing.
		switch ps := r.Header.Values("DPoP"); len(ps) {
		case 0:
			return nil, "", fail(dpop.ErrInvalidProof, "the request has no DPoP header", nil)
		case 1:
			proof = ps[0]
		default:
			return nil, "", fail(dpop.ErrInvalidProof, "the request has more than one DPoP header", nil)
		}
	}
	// One hash of the token serves the token cache and the proof's ath.
	digest := tokenDigest(token)
	c, err := v.validateToken(r.Context(), token, digest, now)
	if err != nil {
		return nil, "", err
	}
	if v.bearer {
		if c.JKT != "" {
			return nil, "", fail(ErrInvalidToken, "a DPoP-bound access token must be sent with the DPoP scheme and a proof", nil)
		}
		if err := v.checkScopes(c, v.scopes); err != nil {
			return nil, "", err
		}
		return c, token, nil
	}
	if c.JKT == "" {
		return nil, "", fail(ErrInvalidToken, "access token is not DPoP-bound (no cnf.jkt)", nil)
	}
	// The proof's key is compared with cnf.jkt before its signature is
	// checked: with one stolen token, proofs with costly keys of the
	// attacker's choice would otherwise each cost a verification.
	p, err := v.proofs.Verify(proof, dpop.Request{Method: r.Method, URL: v.requestURL(r), AccessToken: token,
		AccessTokenHash: base64.RawURLEncoding.EncodeToString(digest[:]), JKT: c.JKT, Now: now})
	if err != nil {
		return nil, "", proofError(err)
	}
	if err := v.checkScopes(c, v.scopes); err != nil {
		return nil, "", err
	}
	// Last, so that nothing is spent by a request refused for any reason.
	switch err := v.replay.Use(r.Context(), replayKey(p.Thumbprint, p.JTI), now, p.Expires); {
	case err == nil:
	case errors.Is(err, ErrReplay):
		return nil, "", fail(ErrReplay, "DPoP proof has been used before", nil)
	default:
		return nil, "", fail(ErrReplayUnavailable, "the API cannot accept more requests just now; try again shortly", err)
	}
	return c, token, nil
}

// credentials returns the token of the route's scheme from the
// Authorization header.
func (v *Validator) credentials(r *http.Request) (string, error) {
	auth := r.Header.Values("Authorization")
	switch len(auth) {
	case 0:
		return "", fail(ErrNoToken, "the request has no access token", nil)
	case 1:
	default:
		return "", fail(ErrInvalidRequest, "the request has more than one Authorization header", nil)
	}
	scheme, token, _ := strings.Cut(auth[0], " ")
	token = strings.TrimLeft(token, " ")
	switch {
	case !v.bearer && strings.EqualFold(scheme, "Bearer"):
		return "", fail(ErrInvalidToken, "this API requires DPoP: send the token with the DPoP scheme and a DPoP proof", nil)
	case v.bearer && strings.EqualFold(scheme, "DPoP"):
		return "", fail(ErrInvalidToken, "this route takes Bearer tokens; DPoP-bound tokens go to the API's DPoP routes", nil)
	case !strings.EqualFold(scheme, v.scheme()):
		return "", fail(ErrNoToken, "the request has no access token of the "+v.scheme()+" scheme", nil)
	case token == "":
		return "", fail(ErrInvalidRequest, "the Authorization header has no token", nil)
	case len(token) > maxTokenSize:
		return "", fail(ErrInvalidToken, "access token is too large", nil)
	}
	return token, nil
}

func (v *Validator) scheme() string {
	if v.bearer {
		return "Bearer"
	}
	return "DPoP"
}

// validateToken checks the access token (profile §10.3, RFC 9068 §4), or
// finds it among those checked before, by key, the token's SHA-256: then only exp is looked at again,
// since nothing else that was checked changes with time.
func (v *Validator) validateToken(ctx context.Context, token string, key [32]byte, now time.Time) (*Claims, error) {
	if v.tokens == nil {
		return v.verifyToken(ctx, token, now)
	}
	if c, ok := v.tokens.get(key, now); ok {
		if !now.Before(c.Expiry.Add(v.leeway)) {
			return nil, fail(ErrInvalidToken, "access token has expired", nil)
		}
		return c, nil
	}
	c, err := v.verifyToken(ctx, token, now)
	if err == nil {
		v.tokens.put(key, c, now, c.Expiry.Add(v.leeway))
	}
	return c, err
}

// verifyToken checks the access token's signature and claims.
func (v *Validator) verifyToken(ctx context.Context, token string, now time.Time) (*Claims, error) {
	tok, err := jws.Parse(token, v.algs)
	if err != nil {
		return nil, fail(ErrInvalidToken, "access token is not a JWS signed with an allowed algorithm", nil)
	}
	h := &tok.Header
	switch strings.ToLower(h.Typ) {
	case "at+jwt", "application/at+jwt", "jwt":
	default:
		return nil, fail(ErrInvalidToken, `access token typ must be "at+jwt" or "JWT"`, nil)
	}
	if h.Kid == "" {
		return nil, fail(ErrInvalidToken, "access token has no kid", nil)
	}
	key, err := v.keys.key(ctx, h.Kid)
	if err != nil {
		return nil, fail(ErrKeysUnavailable, "the issuer's signing keys could not be read; try again later", err)
	}
	if key == nil {
		return nil, fail(ErrInvalidToken, "access token kid is not among the issuer's signing keys", nil)
	}
	alg := tok.Algorithm()
	if key.Algorithm != "" && key.Algorithm != h.Alg {
		return nil, fail(ErrInvalidToken, "access token alg is not the alg of its key", nil)
	}
	if err := jws.CheckKey(alg, key.Key); err != nil {
		return nil, fail(ErrInvalidToken, "access token alg does not fit its key", nil)
	}
	if err := tok.Verify(key.Key); err != nil {
		return nil, fail(ErrInvalidToken, "access token signature is invalid", nil)
	}
	c, has, err := parseClaims(tok.Payload)
	if err != nil {
		return nil, fail(ErrInvalidToken, err.Error(), nil)
	}
	switch {
	case c.Issuer != v.issuer:
		return nil, fail(ErrInvalidToken, "access token is from another issuer (iss)", nil)
	case !slices.Contains(c.Audience, v.audience):
		return nil, fail(ErrInvalidToken, "access token is not for this API (aud)", nil)
	case v.single && len(c.Audience) != 1:
		return nil, fail(ErrInvalidToken, "access token is for other APIs too (aud)", nil)
	case !has.exp:
		return nil, fail(ErrInvalidToken, "access token has no exp", nil)
	case !now.Before(c.Expiry.Add(v.leeway)):
		return nil, fail(ErrInvalidToken, "access token has expired", nil)
	case has.nbf && now.Add(v.leeway).Before(c.NotBefore):
		return nil, fail(ErrInvalidToken, "access token is not valid yet (nbf)", nil)
	case c.ClientID == "":
		return nil, fail(ErrInvalidToken, "access token has no client_id", nil)
	}
	return c, nil
}

func (v *Validator) checkScopes(c *Claims, want []string) error {
	for _, s := range want {
		if !c.HasScope(s) {
			e := fail(ErrInsufficientScope, "access token lacks scope "+s, nil)
			e.scope = strings.Join(want, " ")
			return e
		}
	}
	return nil
}

// requestURL is the URL the client called, as htu must name it.
func (v *Validator) requestURL(r *http.Request) string {
	if v.public != nil {
		return v.public.Scheme + "://" + v.public.Host + strings.TrimSuffix(v.public.EscapedPath(), "/") + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}
