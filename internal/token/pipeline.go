package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/metrics"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// Path is where the endpoint is mounted, relative to the issuer.
const Path = "/connect/token"

// DefaultMaxBody bounds a token request body. A request with an assertion
// carrying assertion_details is 1–3 KiB.
const DefaultMaxBody = 8 << 10

// SignerSource gives the key that signs now.
type SignerSource interface {
	Signer() (*keys.Signer, error)
}

// RefreshStore keeps refresh tokens (store.Store).
type RefreshStore interface {
	RefreshToken(ctx context.Context, id string) (store.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, now time.Time, oldID string, next store.RefreshToken) error
	RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error)
}

// Config wires the endpoint.
type Config struct {
	Issuer string
	// Registry returns the current registry snapshot.
	Registry func() *registry.Snapshot
	Keys     SignerSource
	// Assertions checks client assertions; its Audiences should hold the
	// issuer, the issuer with "/" and the token endpoint URL.
	Assertions *clientauth.Verifier
	// Proofs checks DPoP proofs. Its Nonces, when set, makes nonces
	// mandatory (HelseID behaviour); the endpoint then also hands them out.
	Proofs *dpop.Verifier
	// Refresh keeps refresh tokens. Nil leaves the refresh_token grant out.
	Refresh RefreshStore
	// PublicKeys returns the published signing keys (keys.Manager.JWKS:
	// the next, the active and the retired ones whose tokens may still
	// live), which verify the access tokens this service issued: the
	// subject tokens of token exchange and the tokens APIs introspect. Nil
	// leaves token exchange out.
	PublicKeys func() jose.JSONWebKeySet
	// Decisions commits every decision: the single-use values and refresh
	// token a token spends, with its audit record, and the audit record of
	// every refusal.
	Decisions DecisionStore
	// Instance names this server's chain in the audit log.
	Instance string
	// Metrics counts requests; nil counts nothing.
	Metrics *metrics.Metrics
	// AddressLimit and ClientLimit rate-limit requests per source address
	// (before anything is verified) and per authenticated client; nil
	// means no limit.
	AddressLimit, ClientLimit *ratelimit.Limiter
	// TrustForwardedFor takes the source address from X-Forwarded-For.
	TrustForwardedFor bool
	// TokenLifetime is the default access token lifetime.
	TokenLifetime time.Duration
	MaxBody       int64
	Now           func() time.Time
	Log           *slog.Logger
}

// Endpoint is the token endpoint.
type Endpoint struct {
	cfg      Config
	tokenURL string
	grants   map[string]grant
}

// grant fills in a token for one grant_type. It is called after the client
// is authenticated and the DPoP proof (if any) is verified, and must not
// spend anything: the pipeline does that once the grant has said yes.
type grant interface {
	issue(ctx context.Context, t *tokenRequest) (*issue, error)
}

// tokenRequest is a request that has passed authentication.
type tokenRequest struct {
	*Request
	Client    *registry.Client
	Snapshot  *registry.Snapshot
	Assertion *clientauth.Assertion
	Proof     *dpop.Proof // nil without DPoP
	Now       time.Time
}

// issue is a grant's answer: what the token says.
type issue struct {
	API      *store.API
	Scopes   []string
	Claims   AccessClaims // iss, times, jti and cnf are filled in by the pipeline
	Lifetime time.Duration
	// RejectedScopes were asked for and left out because the organisation
	// has not accepted their API's terms of use (profile §6.3).
	RejectedScopes []string
	// IssuedTokenType is the issued_token_type of token exchange
	// (RFC 8693 §2.2.1); empty for the other grants.
	IssuedTokenType string
	// Rotate is the refresh token the grant spends and its successor. The
	// pipeline rotates only after everything else has passed.
	Rotate *rotation
}

// rotation replaces a refresh token by its successor in the same family.
type rotation struct {
	OldID string
	Next  store.RefreshToken
	// Value is the successor's value, sent to the client and never stored.
	Value string
}

// New returns the endpoint.
func New(cfg Config) *Endpoint {
	cfg = withDefaults(cfg)
	e := &Endpoint{cfg: cfg, tokenURL: strings.TrimSuffix(cfg.Issuer, "/") + Path}
	e.grants = map[string]grant{
		oauth.GrantTypeClientCredentials: clientCredentials{e},
	}
	if cfg.PublicKeys != nil {
		e.grants[oauth.GrantTypeTokenExchange] = tokenExchange{e}
	}
	if cfg.Refresh != nil {
		e.grants[oauth.GrantTypeRefreshToken] = refreshGrant{e}
	}
	return e
}

// URL is the endpoint's absolute URL.
func (e *Endpoint) URL() string { return e.tokenURL }

// GrantTypes lists the grant types the endpoint serves, for discovery.
func (e *Endpoint) GrantTypes() []string {
	out := make([]string, 0, len(e.grants))
	for g := range e.grants {
		out = append(out, g)
	}
	return out
}

// Mount registers the endpoint for every method, so that a wrong method gets
// an OAuth error rather than the mux's plain-text 405.
func (e *Endpoint) Mount(mux *http.ServeMux) {
	mux.Handle(Path, e)
}

func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // the real clock: metrics time requests
	d := &decision{}
	defer d.close()
	resp, err := e.handle(w, r, d)
	grant := e.grantLabel(d.grantType)
	if err != nil {
		err = recordRefusal(e.cfg, r, endpointToken, d, err)
		oe := e.writeError(w, r, err)
		e.cfg.Metrics.Request(endpointToken, grant, oe.Code, time.Since(start))
		return
	}
	if e.cfg.Proofs.Nonces != nil {
		// Hand out the current nonce with every answer so that clients
		// that keep it skip the use_dpop_nonce round trip next time.
		w.Header().Set("DPoP-Nonce", e.cfg.Proofs.Nonces.Issue(e.cfg.Now()))
	}
	if err := oauth.WriteJSON(w, http.StatusOK, resp); err != nil {
		e.cfg.Log.Warn("token response not written", "request_id", requestid.From(r.Context()), "err", err)
	}
	e.cfg.Metrics.Request(endpointToken, grant, "ok", time.Since(start))
	e.cfg.Metrics.Issued(d.clientID, d.audience)
}

// response is the success body (RFC 6749 §5.1, RFC 9449 §5). The fields
// after scope appear only where a grant sets them, so a client_credentials
// answer is what it always was.
type response struct {
	AccessToken string `json:"access_token"`
	// IssuedTokenType is set by token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	// RTExpiresIn is HelseID's: seconds until the refresh token expires
	// (profile §4.1).
	RTExpiresIn int64 `json:"rt_expires_in,omitempty"`
	// RejectedScope lists scopes of APIs whose terms the organisation has
	// not accepted, space-separated like scope (profile §4.1).
	RejectedScope string `json:"rejected_scope,omitempty"`
}

// handle is the fixed pipeline. It fills in d as it learns who asks for
// what, for the audit record.
func (e *Endpoint) handle(w http.ResponseWriter, r *http.Request, d *decision) (*response, error) {
	now := e.cfg.Now()
	// 0: the source address's rate, before any work is done for it.
	if err := limitAddress(e.cfg, r, now); err != nil {
		return nil, err
	}
	// 1–3: transport, body bound, one parse of the form.
	req, err := parseRequest(w, r, e.cfg.MaxBody, endpointToken)
	if err != nil {
		return nil, err
	}
	d.grantType = truncate(req.GrantType, 100)
	snap := e.cfg.Registry()
	// From here on the request ends in one decision (its token or its
	// refusal), a signature or two away: announced only now, so that a
	// client sending its form slowly does not hold commits open.
	d.pending = e.cfg.Decisions.ExpectDecision()

	// 4: private_key_jwt.
	client, assertion, err := authenticate(e.cfg.Assertions, req, snap, now)
	if err != nil {
		return nil, err
	}
	d.clientID = client.ID
	if err := limitClient(e.cfg, client.ID, now); err != nil {
		return nil, err
	}
	t := &tokenRequest{Request: req, Client: client, Snapshot: snap, Assertion: assertion, Now: now}

	// 5: DPoP.
	if req.DPoP != "" {
		proof, err := e.cfg.Proofs.Verify(req.DPoP, dpop.Request{Method: http.MethodPost, URL: e.tokenURL, Now: now})
		if err != nil {
			return nil, e.proofError(err, now)
		}
		t.Proof = proof
	}

	// 6–7: the grant.
	if req.GrantType == "" {
		return nil, oauth.InvalidRequest("grant_type is missing")
	}
	g, ok := e.grants[req.GrantType]
	if !ok {
		return nil, oauth.Newf(oauth.CodeUnsupportedGrantType, "grant_type %s is not supported", req.GrantType)
	}
	if !contains(client.GrantTypes, req.GrantType) {
		return nil, oauth.Newf(oauth.CodeUnauthorizedClient, "the client is not allowed to use grant_type %s", req.GrantType)
	}
	is, err := g.issue(r.Context(), t)
	if err != nil {
		return nil, err
	}
	d.fromIssue(is)
	// HelseID: DPoP is required when the API requires it (the default) or
	// the client is configured to require it (decisions.md).
	if t.Proof == nil && (!is.API.AllowBearer || client.RequireDPoP) {
		return nil, oauth.InvalidDPoPProof("a DPoP proof is required: " + is.API.Audience + " does not accept Bearer tokens")
	}

	// 8: sign, then commit the decision: the assertion and proof jtis, the
	// refresh token the grant spends, and the audit record that says the
	// token was issued, in one transaction, durable before the answer.
	// Signing comes first so that nothing can fail once the decision is
	// committed; a token signed for a request the commit then refuses (a
	// replayed jti) is thrown away unseen.
	resp, err := e.sign(t, is)
	if err != nil {
		return nil, err
	}
	d.tokenID = is.Claims.JTI
	jtis := []store.JTI{{Key: assertionKey(client.ID, assertion.JTI), Expires: e.cfg.Assertions.ReplayUntil(assertion)}}
	if t.Proof != nil {
		jtis = append(jtis, store.JTI{Key: proofKey(t.Proof), Expires: t.Proof.Expires})
	}
	dec := store.Decision{JTIs: jtis, Audit: newRecord(e.cfg, r, endpointToken, d, audit.OutcomeIssued, "")}
	if is.Rotate != nil {
		dec.Rotate = &store.Rotation{OldID: is.Rotate.OldID, Next: is.Rotate.Next}
	}
	if _, err := d.commit(e.cfg.Decisions, r.Context(), now, dec); err != nil {
		d.tokenID = "" // not issued after all
		if errors.Is(err, store.ErrReplay) {
			return nil, e.replayError(err)
		}
		if is.Rotate != nil {
			return nil, rotationError(err)
		}
		return nil, err
	}
	if is.Rotate != nil {
		resp.RefreshToken = is.Rotate.Value
		resp.RTExpiresIn = int64(is.Rotate.Next.ExpiresAt.Sub(now) / time.Second)
	}
	e.cfg.Log.Debug("token issued", "request_id", requestid.From(r.Context()), "client_id", client.ID,
		"grant_type", t.GrantType, "aud", d.audience, "jti", d.tokenID, "dpop", t.Proof != nil,
		"refresh_family", familyOf(is))
	return resp, nil
}

func familyOf(is *issue) string {
	if is.Rotate == nil {
		return ""
	}
	return is.Rotate.Next.FamilyID
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// replayError maps a refused spend to what the client sent twice.
func (e *Endpoint) replayError(err error) error { return replayError(e.cfg, err) }

// replayError maps a refused spend at any endpoint to what the client sent
// twice, and counts it.
func replayError(cfg Config, err error) error {
	var re *store.ReplayError
	switch {
	case errors.As(err, &re) && strings.HasPrefix(re.Key, "p|"):
		cfg.Metrics.Replay("proof")
		return oauth.InvalidDPoPProof("DPoP proof was already used (jti)")
	case errors.Is(err, store.ErrReplay):
		cfg.Metrics.Replay("assertion")
		return oauth.InvalidClient("client_assertion was already used (jti)")
	}
	return err
}

// authenticate checks the client authentication of a request to any
// endpoint that takes private_key_jwt, with that endpoint's verifier (whose
// Audiences name it). It spends nothing.
func authenticate(v *clientauth.Verifier, req *Request, snap *registry.Snapshot, now time.Time) (*registry.Client, *clientauth.Assertion, error) {
	secret := req.Form.Has("client_secret")
	hasAssertion := req.ClientAssertion != "" || req.ClientAssertionType != ""
	switch {
	case (req.Basic || secret) && hasAssertion:
		// RFC 6749 §2.3: one authentication method per request.
		return nil, nil, oauth.InvalidRequest("more than one client authentication method")
	case req.Basic || secret:
		return nil, nil, oauth.InvalidClient("client secrets are not accepted: authenticate with private_key_jwt")
	case !hasAssertion:
		return nil, nil, oauth.InvalidClient("client authentication is required: private_key_jwt (client_assertion)")
	case req.ClientAssertionType != oauth.ClientAssertionTypeJWTBearer:
		return nil, nil, oauth.InvalidClient("client_assertion_type must be " + oauth.ClientAssertionTypeJWTBearer)
	}
	a, err := v.Parse(req.ClientAssertion)
	if err != nil {
		return nil, nil, assertionError(err)
	}
	if req.ClientID != "" && req.ClientID != a.ClientID {
		return nil, nil, oauth.InvalidClient("client_id does not match the client_assertion")
	}
	c, ok := snap.Client(a.ClientID)
	switch {
	case !ok:
		return nil, nil, oauth.InvalidClient("unknown client")
	case c.Err != nil:
		return nil, nil, oauth.InvalidClient("the client's registration cannot be used").Wrap(c.Err)
	case c.Status == store.StatusPending:
		return nil, nil, oauth.InvalidClient("the client is waiting for approval")
	case !c.Active():
		return nil, nil, oauth.InvalidClient("the client is disabled")
	}
	if err := v.Verify(a, c.Keys, now); err != nil {
		return nil, nil, assertionError(err)
	}
	return c, a, nil
}

func assertionError(err error) error {
	var ce *clientauth.Error
	switch {
	case errors.Is(err, clientauth.ErrBothDetails):
		return oauth.InvalidRequest("client_assertion must not carry both assertion_details and authorization_details")
	case errors.As(err, &ce):
		return oauth.InvalidClient(ce.Reason)
	}
	return err
}

func (e *Endpoint) proofError(err error, now time.Time) error {
	var de *dpop.Error
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		oe := oauth.UseDPoPNonce(e.cfg.Proofs.Nonces.Issue(now))
		if errors.As(err, &de) {
			oe.Description = de.Reason
		}
		return oe
	case errors.As(err, &de):
		return oauth.InvalidDPoPProof(de.Reason)
	}
	return err
}

func (e *Endpoint) sign(t *tokenRequest, is *issue) (*response, error) {
	lifetime := e.cfg.TokenLifetime
	for _, l := range []time.Duration{is.API.AccessTokenLifetime, t.Client.AccessTokenLifetime, is.Lifetime} {
		if l > 0 && l < lifetime {
			lifetime = l
		}
	}
	c := &is.Claims
	c.Issuer = e.cfg.Issuer
	c.IssuedAt = t.Now.Unix()
	c.NotBefore = c.IssuedAt
	c.Expiry = t.Now.Add(lifetime).Unix()
	c.JTI = newTokenID()
	c.Audience = is.API.Audience
	c.Scope = is.Scopes
	typ := oauth.TokenTypeBearer
	if t.Proof != nil {
		c.Cnf = &Confirmation{JKT: t.Proof.Thumbprint}
		typ = oauth.TokenTypeDPoP
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	signer, err := e.cfg.Keys.Signer()
	if err != nil {
		return nil, err
	}
	at, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	return &response{
		AccessToken:     at,
		IssuedTokenType: is.IssuedTokenType,
		TokenType:       typ,
		ExpiresIn:       int64(lifetime / time.Second),
		Scope:           strings.Join(is.Scopes, " "),
		RejectedScope:   strings.Join(is.RejectedScopes, " "),
	}, nil
}

// writeError renders err and logs it under the request ID. Refusals are
// logged at info with their code; anything else is a server_error whose
// cause is logged at error and never sent.
func (e *Endpoint) writeError(w http.ResponseWriter, r *http.Request, err error) *oauth.Error {
	oe := oauth.WriteError(w, err)
	attrs := []any{"request_id", requestid.From(r.Context()), "error", oe.Code}
	if oe.Code == oauth.CodeServerError {
		e.cfg.Log.Error("token request failed", append(attrs, "cause", err.Error())...)
		return oe
	}
	attrs = append(attrs, "description", oe.Description)
	if cause := errors.Unwrap(oe); cause != nil {
		attrs = append(attrs, "cause", cause.Error())
	}
	e.cfg.Log.Info("token request refused", attrs...)
	return oe
}

// The replay keys are namespaced so that an assertion jti and a proof jti
// cannot collide, and hashed so that their length is fixed whatever a client
// sends.
func assertionKey(clientID, jti string) string { return "a|" + hashKey(clientID, jti) }

func proofKey(p *dpop.Proof) string { return "p|" + hashKey(p.Thumbprint, p.JTI) }

func hashKey(scope, jti string) string {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
