package token

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/clientauth"
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
	cfg        Config
	url        string
	assertions *clientauth.Verifier
}

// NewIntrospection returns the endpoint. cfg is the token endpoint's, whose
// PublicKeys must be set; client assertions may also name this endpoint's
// URL as aud (decisions.md).
func NewIntrospection(cfg Config) *Introspection {
	cfg = withDefaults(cfg)
	url := strings.TrimSuffix(cfg.Issuer, "/") + IntrospectionPath
	return &Introspection{cfg: cfg, url: url, assertions: withAudience(cfg.Assertions, url)}
}

// URL is the endpoint's absolute URL.
func (e *Introspection) URL() string { return e.url }

// Mount registers the endpoint for every method, so that a wrong method gets
// an OAuth error.
func (e *Introspection) Mount(mux *http.ServeMux) { mux.Handle(IntrospectionPath, e) }

func (e *Introspection) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // the real clock: metrics time requests
	d := &decision{}
	resp, err := e.handle(w, r, d)
	if err != nil {
		refuse(e.cfg, w, r, endpointIntrospection, d, err, start)
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
	if err := limitAddress(e.cfg, r, now); err != nil {
		return nil, err
	}
	req, err := parseRequest(w, r, e.cfg.MaxBody, endpointIntrospection)
	if err != nil {
		return nil, err
	}
	snap := e.cfg.Registry()
	client, assertion, err := authenticate(e.assertions, req, snap, now)
	if err != nil {
		return nil, err
	}
	d.clientID = client.ID
	if err := limitClient(e.cfg, client.ID, now); err != nil {
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
	if err := commitAnswer(e.cfg, r, endpointIntrospection, d, client, assertion, outcome, ""); err != nil {
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
	tok, err := verifyAccessToken(raw, e.cfg.PublicKeys(), e.cfg.Issuer, now)
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, nil
		}
		return nil, err
	}
	api, ok := snap.API(tok.Claims.Audience)
	if !ok || !contains(api.Owners, client.ID) {
		return nil, nil
	}
	return tok, nil
}

// ownsAnAPI reports whether clientID is among the owners of any API.
func ownsAnAPI(snap *registry.Snapshot, clientID string) bool {
	for _, a := range snap.APIs() {
		if contains(a.Owners, clientID) {
			return true
		}
	}
	return false
}

// withAudience copies v and adds an endpoint URL to the accepted aud values.
func withAudience(v *clientauth.Verifier, url string) *clientauth.Verifier {
	c := *v
	c.Audiences = append(append([]string(nil), v.Audiences...), url)
	return &c
}

// withDefaults fills in a Config as New does.
func withDefaults(cfg Config) Config {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	return cfg
}

// refuse answers a refused request to endpoint (introspection,
// revocation) as the token endpoint does: the refusal on record first, then
// the OAuth error, logged and counted.
func refuse(cfg Config, w http.ResponseWriter, r *http.Request, endpoint string, d *decision, err error, start time.Time) {
	err = recordRefusal(cfg, r, endpoint, d, err)
	oe := oauth.WriteError(w, err)
	cfg.Metrics.Request(endpoint, "", oe.Code, time.Since(start))
	attrs := []any{"request_id", requestid.From(r.Context()), "endpoint", endpoint, "error", oe.Code}
	if oe.Code == oauth.CodeServerError {
		cfg.Log.Error("request failed", append(attrs, "cause", err.Error())...)
		return
	}
	attrs = append(attrs, "description", oe.Description)
	if cause := errors.Unwrap(oe); cause != nil {
		attrs = append(attrs, "cause", cause.Error())
	}
	cfg.Log.Info("request refused", attrs...)
}
