package token

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
)

// IntrospectionPath is where the introspection endpoint is mounted
// (profile §1.2).
const IntrospectionPath = "/connect/introspect"

// Introspection is the token introspection endpoint (RFC 7662) for APIs.
// The caller authenticates with private_key_jwt as a client that owns at
// least one API, and learns about access tokens for the APIs it owns only:
// any other token, and any token that is not a live access token of this
// service, is {"active": false}, so the answer never tells one API about
// another's tokens.
type Introspection struct {
	base
	publicKeys func() jose.JSONWebKeySet
}

// IntrospectionConfig wires the introspection endpoint.
type IntrospectionConfig struct {
	Shared
	// PublicKeys returns the published signing keys (keys.Manager.JWKS),
	// which verify the tokens asked about. Required.
	PublicKeys func() jose.JSONWebKeySet
}

// NewIntrospection returns the endpoint. Client assertions may name its
// URL as aud, as well as the audiences of cfg.Assertions.
func NewIntrospection(cfg IntrospectionConfig) *Introspection {
	if cfg.PublicKeys == nil {
		panic("token: NewIntrospection without PublicKeys")
	}
	return &Introspection{base: newBase(cfg.Shared, endpointIntrospection, IntrospectionPath), publicKeys: cfg.PublicKeys}
}

// Mount registers the endpoint for every method, so that a wrong method gets
// an OAuth error.
func (e *Introspection) Mount(mux *http.ServeMux) { mux.Handle(IntrospectionPath, e) }

func (e *Introspection) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // the real clock: metrics time requests
	d := &decision{}
	resp, err := e.handle(w, r, d)
	if err != nil {
		e.refuse(w, r, d, err, "", start)
		return
	}
	if err := oauth.WriteJSON(w, http.StatusOK, resp); err != nil {
		e.cfg.Log.Warn("introspection response not written", "request_id", requestid.From(r.Context()), "err", err)
	}
	e.cfg.Metrics.Request(endpointIntrospection, "", "ok", time.Since(start))
}

// inactive is the whole answer for a token the caller may not learn about
// (RFC 7662 §2.2).
var inactive = map[string]any{"active": false}

// handle answers a request, and records the answer with the assertion it
// spends: which token (audience, jti, client organisations, the person's
// pseudonym) an API asked about and whether it was told the token is
// active. It fills in d as it learns who asks, for the record of a
// refusal.
func (e *Introspection) handle(w http.ResponseWriter, r *http.Request, d *decision) (map[string]any, error) {
	now := e.cfg.Now()
	if err := e.limitAddress(r, now); err != nil {
		return nil, err
	}
	req, err := parseRequest(w, r, e.cfg.MaxBody, e.name)
	if err != nil {
		return nil, err
	}
	snap := e.cfg.Registry()
	client, assertion, err := e.authenticate(req, snap, now)
	if err != nil {
		return nil, err
	}
	d.clientID, d.authenticated = client.ID, true
	if err := e.limitClient(client.ID, now); err != nil {
		return nil, err
	}
	if !ownsAnAPI(snap, client.ID) {
		return nil, oauth.UnauthorizedClient("only the owner clients of an API may introspect its tokens, and this client owns none")
	}
	raw := req.Form.Get("token")
	if raw == "" {
		return nil, oauth.InvalidRequest("token is missing")
	}
	tok, err := e.lookUp(raw, snap, client, now)
	if err != nil {
		return nil, err
	}
	outcome := audit.OutcomeInactive
	if tok != nil {
		// The record names the token only when the caller may learn
		// about it.
		outcome = audit.OutcomeActive
		d.fromToken(&tok.Claims)
	}
	if err := e.commitAnswer(r, d, client, assertion, outcome, ""); err != nil {
		return nil, err
	}
	if tok == nil {
		return inactive, nil
	}
	// The token's own claims, with scope as RFC 7662 §2.2 writes it (a
	// space-separated string) and the token type (RFC 9449 §6.2).
	out := make(map[string]any, len(tok.Raw)+2)
	for k, v := range tok.Raw {
		out[k] = v
	}
	out["active"] = true
	out["scope"] = strings.Join(tok.Claims.Scope, " ")
	out["token_type"] = oauth.TokenTypeBearer
	if tok.Claims.Cnf != nil {
		out["token_type"] = oauth.TokenTypeDPoP
	}
	return out, nil
}

// lookUp returns the access token raw if it is live and client owns its
// API, nil if the answer is inactive.
func (e *Introspection) lookUp(raw string, snap *registry.Snapshot, client *registry.Client, now time.Time) (*verifiedToken, error) {
	tok, err := verifyAccessToken(raw, e.publicKeys(), e.cfg.Issuer, now)
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, nil
		}
		return nil, err
	}
	api, ok := snap.API(tok.Claims.Audience)
	if !ok || !slices.Contains(api.Owners, client.ID) {
		return nil, nil
	}
	return tok, nil
}

// ownsAnAPI reports whether clientID is among the owners of any API.
func ownsAnAPI(snap *registry.Snapshot, clientID string) bool {
	for _, a := range snap.APIs() {
		if slices.Contains(a.Owners, clientID) {
			return true
		}
	}
	return false
}
