package token

import (
	"errors"
	"net/http"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// Path is where the endpoint is mounted, relative to the issuer.
const Path = "/connect/token"

// Config wires the token endpoint.
type Config struct {
	Shared
	Keys SignerSource
	// Proofs checks DPoP proofs. Its Nonces, when set, makes nonces
	// mandatory (HelseID behaviour); the endpoint then also hands them out.
	Proofs *dpop.Verifier
	// Refresh keeps refresh tokens. Nil leaves the refresh_token grant out.
	Refresh RefreshStore
	// PublicKeys returns the published signing keys (keys.Manager.JWKS:
	// the next, the active and the retired ones whose tokens may still
	// live), which verify the subject tokens of token exchange. Nil leaves
	// token exchange out.
	PublicKeys func() jose.JSONWebKeySet
	// TokenLifetime is the default access token lifetime.
	TokenLifetime time.Duration
	// Codes keeps authorization codes. Nil leaves the authorization_code
	// grant out.
	Codes CodeStore
	// RefreshLifetime is the default absolute lifetime of the refresh
	// tokens of a login (a client's own setting wins).
	RefreshLifetime time.Duration
	// PseudonymKey makes a person's sub from their pid
	// (keys.Manager.PseudonymKey). Required with Codes.
	PseudonymKey []byte
	// Persons is the person register, for the names of ID tokens of
	// logins whose identity provider gave none; nil (what production
	// gets) issues the provider's names only.
	Persons PersonStore
	// Names seals the provider's names into access tokens for userinfo;
	// nil leaves them out, and userinfo then gives no provider names.
	Names *NameSealer
}

// Endpoint is the token endpoint.
type Endpoint struct {
	base
	keys          SignerSource
	proofs        *dpop.Verifier
	tokenLifetime time.Duration
	grants        map[string]grant
	codes         CodeStore
}

// New returns the endpoint.
func New(cfg Config) *Endpoint {
	e := &Endpoint{
		base:          newBase(cfg.Shared, endpointToken, Path),
		keys:          cfg.Keys,
		proofs:        cfg.Proofs,
		tokenLifetime: cfg.TokenLifetime,
	}
	e.grants = map[string]grant{
		oauth.GrantTypeClientCredentials: clientCredentials{},
	}
	if cfg.PublicKeys != nil {
		e.grants[oauth.GrantTypeTokenExchange] = tokenExchange{issuer: cfg.Issuer, publicKeys: cfg.PublicKeys}
	}
	if cfg.Refresh != nil {
		e.grants[oauth.GrantTypeRefreshToken] = refreshGrant{tokens: cfg.Refresh, log: e.cfg.Log}
	}
	if cfg.Codes != nil {
		e.codes = cfg.Codes
		if len(cfg.PseudonymKey) < identity.MinKeySize {
			panic("token: the authorization_code grant without a pseudonym key")
		}
		e.grants[oauth.GrantTypeAuthorizationCode] = authorizationCode{codes: cfg.Codes, refreshLifetime: cfg.RefreshLifetime,
			log: e.cfg.Log, pseudonymKey: cfg.PseudonymKey, persons: cfg.Persons, names: cfg.Names}
	}
	return e
}

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
		e.refuse(w, r, d, err, grant, start)
		return
	}
	e.offerNonce(w)
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
	// IDToken is the ID token of a login with openid, at the code's
	// redemption (OpenID Connect Core §3.1.3.3) and at each refresh
	// (§12.2).
	IDToken string `json:"id_token,omitempty"`
}

// handle is the fixed pipeline. It fills in d as it learns who asks for
// what, for the audit record.
func (e *Endpoint) handle(w http.ResponseWriter, r *http.Request, d *decision) (*response, error) {
	now := e.cfg.Now()
	// 0: the source address's rate, before any work is done for it
	// (limits.go).
	if err := e.limitAddress(r, now); err != nil {
		return nil, err
	}
	// 1–3: transport, body bound, one parse of the form (request.go).
	req, err := parseRequest(w, r, e.cfg.MaxBody, e.name)
	if err != nil {
		return nil, err
	}
	d.grantType = truncate(req.GrantType, 100)
	snap := e.cfg.Registry()

	// 4: private_key_jwt (authenticate.go).
	client, assertion, err := e.authenticate(req, snap, now)
	if err != nil {
		return nil, err
	}
	d.clientID, d.authenticated = client.ID, true
	if err := e.limitClient(client.ID, now); err != nil {
		return nil, err
	}

	// 5: DPoP (proof.go).
	proof, err := e.verifyProof(req, now)
	if err != nil {
		return nil, err
	}
	// From here on the request ends in one commit, its token or its
	// audited refusal, a signature away: announced only now, so that
	// neither a client sending its form slowly nor a flood of refusals
	// that are only counted (a bad assertion, the use_dpop_nonce round
	// trip) holds commits open for writes that never come.
	d.pending = e.cfg.Decisions.ExpectDecision()
	t := &tokenRequest{Request: req, Client: client, Snapshot: snap, Assertion: assertion, Proof: proof, Now: now}

	// 6–7: the grant (grant.go; one file per grant).
	if req.GrantType == "" {
		return nil, oauth.InvalidRequest("grant_type is missing")
	}
	g, ok := e.grants[req.GrantType]
	if !ok {
		return nil, oauth.Newf(oauth.CodeUnsupportedGrantType, "grant_type %s is not supported", req.GrantType)
	}
	if !slices.Contains(client.GrantTypes, req.GrantType) {
		return nil, oauth.Newf(oauth.CodeUnauthorizedClient, "the client is not allowed to use grant_type %s", req.GrantType)
	}
	is, err := g.issue(r.Context(), t)
	if err != nil {
		return nil, err
	}
	d.fromIssue(is)
	// HelseID: DPoP is required when the API requires it (the default) or
	// the client is configured to require it.
	if t.Proof == nil && (!is.API.AllowBearer || client.RequireDPoP) {
		return nil, oauth.InvalidDPoPProof("a DPoP proof is required: " + is.API.Audience + " does not accept Bearer tokens")
	}

	// 8: sign (sign.go), then commit the decision (decision.go): the
	// assertion and proof jtis, the refresh token the grant spends, and
	// the audit record that says the token was issued, in one transaction,
	// durable before the answer. Signing comes first so that nothing can
	// fail once the decision is committed; a token signed for a request
	// the commit then refuses (a replayed jti) is thrown away unseen.
	resp, err := e.sign(t, is)
	if err != nil {
		return nil, err
	}
	d.tokenID = is.Claims.JTI
	jtis := []store.JTI{{Key: assertionKey(client.ID, assertion.JTI), Expires: e.assertions.ReplayUntil(assertion)}}
	if t.Proof != nil {
		jtis = append(jtis, store.JTI{Key: proofKey(t.Proof), Expires: t.Proof.Expires})
	}
	dec := store.Decision{JTIs: jtis, Audit: e.newRecord(r, d, audit.OutcomeIssued, "")}
	if is.Rotate != nil {
		dec.Rotate = &store.Rotation{OldID: is.Rotate.OldID, Next: is.Rotate.Next}
	}
	if is.Start != nil {
		// Created before the commit: if the commit is refused, the
		// token's value has never been sent and no one can use it.
		if err := e.codes.CreateRefreshToken(r.Context(), is.Start.Token); err != nil {
			return nil, err
		}
	}
	if _, err := d.commit(r.Context(), e.cfg.Decisions, now, dec); err != nil {
		e.outcomeUnknown(r, d, err, familyOf(is))
		d.tokenID = "" // not issued after all
		if errors.Is(err, store.ErrReplay) {
			return nil, e.replayError(err)
		}
		if is.Rotate != nil {
			return nil, rotationError(err)
		}
		return nil, err
	}
	if is.Redeem != nil {
		if err := e.redeem(r.Context(), t, is, now); err != nil {
			d.tokenID = ""
			return nil, err
		}
	}
	if is.Rotate != nil {
		resp.RefreshToken = is.Rotate.Value
		resp.RTExpiresIn = int64(is.Rotate.Next.ExpiresAt.Sub(now) / time.Second)
	}
	if is.Start != nil {
		resp.RefreshToken = is.Start.Value
		resp.RTExpiresIn = int64(is.Start.Token.ExpiresAt.Sub(now) / time.Second)
	}
	e.cfg.Log.Debug("token issued", "request_id", requestid.From(r.Context()), "client_id", client.ID,
		"grant_type", t.GrantType, "aud", d.audience, "jti", d.tokenID, "dpop", t.Proof != nil,
		"refresh_family", familyOf(is))
	return resp, nil
}

// grantLabel keeps the grant_type the client sent out of metric labels
// unless it is one the endpoint knows: a label per made-up value would grow
// without bound.
func (e *Endpoint) grantLabel(g string) string {
	if _, ok := e.grants[g]; ok {
		return g
	}
	return "other"
}

func familyOf(is *issue) string {
	switch {
	case is.Rotate != nil:
		return is.Rotate.Next.FamilyID
	case is.Start != nil:
		return is.Start.Token.FamilyID
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
