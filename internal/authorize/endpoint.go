package authorize

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// Paths relative to the issuer (profile §1.2).
const (
	PathAuthorize = "/connect/authorize"
	PathPAR       = "/connect/par"
)

// RequestURIPrefix starts every request_uri (RFC 9126 §2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// Default lifetimes: a pushed request lives until the browser brings it
// (RFC 9126 §2.2 suggests 5 to 600 s; short keeps the window small), a
// code until the client redeems it (RFC 6749 §4.1.2: at most 10 minutes).
const (
	DefaultPushedLifetime = 90 * time.Second
	DefaultCodeLifetime   = 60 * time.Second
)

// Store keeps the login state the endpoints write (store.Store).
type Store interface {
	CreatePushedRequest(ctx context.Context, r store.PushedRequest) error
	ConsumePushedRequest(ctx context.Context, now time.Time, id, clientID string) (store.PushedRequest, error)
	CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error
}

// Decisions commits the audit records of the endpoints (store.Store).
type Decisions interface {
	CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error)
}

// Login is the person's side of a login: the pages, the identity
// providers, the session. The authorization endpoint calls Start with a
// request that has passed every check; Login takes over the browser and
// ends, sooner or later, with Endpoint.Complete (the person has logged
// in) or Endpoint.Fail (they could not or would not).
type Login interface {
	Start(w http.ResponseWriter, r *http.Request, req *Request)
}

// LoginFunc is a function as a Login, for wiring a Login that is built
// after the Endpoint it completes logins through.
type LoginFunc func(w http.ResponseWriter, r *http.Request, req *Request)

// Start calls f.
func (f LoginFunc) Start(w http.ResponseWriter, r *http.Request, req *Request) { f(w, r, req) }

// Authentication is who logged in, for Complete: the person as the
// identity provider said, and the session it happened in.
type Authentication struct {
	Person store.Login
	// SessionID names the browser session (the ID token's sid derives
	// from it); empty without one.
	SessionID string
}

// Config wires the endpoints.
type Config struct {
	Issuer   string
	Registry func() *registry.Snapshot
	Store    Store
	// Decisions commits the authorization endpoint's audit records (PAR's
	// go through Gate).
	Decisions Decisions
	// Gate authenticates PAR requests as the token endpoint does; nil
	// leaves PAR out.
	Gate           *token.Gate
	RequestObjects *RequestObjects
	// Login takes over a validated request; nil answers every request
	// with temporarily_unavailable.
	Login Login
	// Test is a test environment: TestIDP's parameters and loopback
	// redirect URIs with any port are accepted.
	Test bool
	// Instance names this server's chain in the audit log.
	Instance                     string
	PushedLifetime, CodeLifetime time.Duration
	// ErrorPage shows an error that cannot go to the client; nil shows a
	// plain page.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, code, description string)
	Now       func() time.Time
	Log       *slog.Logger
}

// Endpoint is the authorization endpoint and, with a Gate, PAR.
type Endpoint struct {
	cfg Config
}

// New returns the endpoints.
func New(cfg Config) *Endpoint {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PushedLifetime <= 0 {
		cfg.PushedLifetime = DefaultPushedLifetime
	}
	if cfg.CodeLifetime <= 0 {
		cfg.CodeLifetime = DefaultCodeLifetime
	}
	if cfg.ErrorPage == nil {
		cfg.ErrorPage = PlainErrorPage
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	return &Endpoint{cfg: cfg}
}

// Mount registers the endpoints.
func (e *Endpoint) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathAuthorize, e.serveAuthorize)
	mux.HandleFunc("POST "+PathAuthorize, e.serveAuthorize)
	if e.cfg.Gate != nil {
		mux.HandleFunc(PathPAR, e.servePAR)
	}
}

// AuthorizationURL and PARURL are the endpoints' absolute URLs.
func (e *Endpoint) AuthorizationURL() string { return e.cfg.Issuer + PathAuthorize }
func (e *Endpoint) PARURL() string           { return e.cfg.Issuer + PathPAR }

// PAR reports whether the pushed authorization request endpoint is served.
func (e *Endpoint) PAR() bool { return e.cfg.Gate != nil }

// RequestObjectAlgorithms are the algorithms request objects may be
// signed with.
func (e *Endpoint) RequestObjectAlgorithms() []string {
	out := make([]string, 0, len(e.cfg.RequestObjects.Algorithms))
	for _, a := range e.cfg.RequestObjects.Algorithms {
		out = append(out, string(a))
	}
	return out
}

// parResponse is RFC 9126 §2.2's answer.
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

func (e *Endpoint) servePAR(w http.ResponseWriter, r *http.Request) {
	e.cfg.Gate.Serve(w, r, func(ctx context.Context, a *token.Admitted, o *token.Outcome) (int, any, error) {
		o.GrantType = oauth.GrantTypeAuthorizationCode
		if !slices.Contains(a.Client.GrantTypes, oauth.GrantTypeAuthorizationCode) {
			return 0, nil, oauth.UnauthorizedClient("the client is not allowed to log people in (authorization_code)")
		}
		if a.Form.Has("request_uri") {
			return 0, nil, oauth.InvalidRequest("request_uri is not accepted at the PAR endpoint (RFC 9126 §2.1)")
		}
		p, perr := readParams(a.Form)
		if perr != nil {
			return 0, nil, oauth.New(perr.code, perr.description)
		}
		if raw, ok := p.one["request"]; ok {
			var err error
			if p, err = e.cfg.RequestObjects.open(raw, a.Client, p, a.Now); err != nil {
				return 0, nil, oauth.New(CodeInvalidRequestObject, err.Error())
			}
		}
		req, rerr := validate(a.Snapshot, a.Client, p, e.cfg.Test)
		if rerr != nil {
			return 0, nil, oauth.New(rerr.code, rerr.description)
		}
		o.Scopes, o.Audience = req.Scopes, strings.Join(req.Resources, " ")
		// RFC 9449 §10.1: the proof's key is the code's, and a dpop_jkt
		// sent with it must name that key.
		if a.Proof != nil {
			if req.JKT != "" && req.JKT != a.Proof.Thumbprint {
				return 0, nil, oauth.InvalidDPoPProof("dpop_jkt does not match the key of the DPoP proof")
			}
			req.JKT = a.Proof.Thumbprint
		}
		req.Pushed = true
		body, err := req.Marshal()
		if err != nil {
			return 0, nil, err
		}
		value := RequestURIPrefix + randomHex(32)
		// Stored before the jtis are spent: if the commit is refused,
		// the request_uri was never sent, and it expires unused.
		if err := e.cfg.Store.CreatePushedRequest(ctx, store.PushedRequest{
			ID: store.SecretID(value), ClientID: a.Client.ID, JKT: req.JKT, Params: body,
			CreatedAt: a.Now, ExpiresAt: a.Now.Add(e.cfg.PushedLifetime),
		}); err != nil {
			return 0, nil, err
		}
		return http.StatusCreated, parResponse{RequestURI: value, ExpiresIn: int64(e.cfg.PushedLifetime / time.Second)}, nil
	})
}

// maxQuery bounds the authorization request, query or form: a request
// object and the parameters.
const maxQuery = 32 << 10

func (e *Endpoint) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	now := e.cfg.Now()
	var values url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxQuery)
		if err := r.ParseForm(); err != nil {
			e.page(w, r, http.StatusBadRequest, oauth.CodeInvalidRequest, "the request is not a valid form")
			return
		}
		values = r.PostForm
	} else {
		if len(r.URL.RawQuery) > maxQuery {
			e.page(w, r, http.StatusRequestURITooLong, oauth.CodeInvalidRequest, "the request is too long")
			return
		}
		var err error
		if values, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			e.page(w, r, http.StatusBadRequest, oauth.CodeInvalidRequest, "the request is not a valid query")
			return
		}
	}
	req, rerr := e.authorizationRequest(r.Context(), values, now)
	if rerr != nil {
		e.fail(w, r, req, rerr)
		return
	}
	if e.cfg.Login == nil {
		if req.Prompt == "none" {
			// Without login pages there are no sessions: nobody is
			// logged in without a page.
			e.fail(w, r, req, redirectError(CodeLoginRequired, "no one is logged in"))
			return
		}
		e.fail(w, r, req, redirectError(oauth.CodeTemporarilyUnavailable, "this server has no login pages yet"))
		return
	}
	// Login answers prompt=none from the session, or with login_required.
	e.cfg.Login.Start(w, r, req)
}

// authorizationRequest reads and validates a request at the authorization
// endpoint: its pushed request (request_uri, spent here), or, for a client
// allowed to skip PAR, its parameters and request object.
func (e *Endpoint) authorizationRequest(ctx context.Context, values url.Values, now time.Time) (*Request, *requestError) {
	p, perr := readParams(values)
	if perr != nil {
		return nil, perr
	}
	clientID := p.one["client_id"]
	if clientID == "" {
		return nil, pageError(oauth.CodeInvalidRequest, "client_id is missing")
	}
	snap := e.cfg.Registry()
	c, ok := snap.Client(clientID)
	switch {
	case !ok || len(clientID) > maxParam:
		return nil, pageError(oauth.CodeInvalidClient, "unknown client")
	case !c.Active():
		return nil, pageError(oauth.CodeInvalidClient, "the client is disabled or waiting for approval")
	case !slices.Contains(c.GrantTypes, oauth.GrantTypeAuthorizationCode):
		return nil, pageError(oauth.CodeUnauthorizedClient, "the client is not allowed to log people in")
	}
	if uri, ok := p.one["request_uri"]; ok {
		return e.pushed(ctx, snap, c, uri, now)
	}
	if raw, ok := p.one["request"]; ok {
		var err error
		if p, err = e.cfg.RequestObjects.open(raw, c, p, now); err != nil {
			return nil, pageError(CodeInvalidRequestObject, "%s", err.Error())
		}
	}
	req, rerr := validate(snap, c, p, e.cfg.Test)
	if rerr != nil {
		return req, rerr
	}
	if !c.AllowPlainAuthorize {
		return req, redirectError(oauth.CodeInvalidRequest, "this client must push its authorization requests (PAR, RFC 9126)")
	}
	return req, nil
}

// pushed spends a pushed request. Any failure is shown on the error page:
// what it would redirect to is not known.
func (e *Endpoint) pushed(ctx context.Context, snap *registry.Snapshot, c *registry.Client, uri string, now time.Time) (*Request, *requestError) {
	if !strings.HasPrefix(uri, RequestURIPrefix) || len(uri) > 200 {
		return nil, pageError(oauth.CodeInvalidRequest, "request_uri is not one this server issued")
	}
	pr, err := e.cfg.Store.ConsumePushedRequest(ctx, now, store.SecretID(uri), c.ID)
	switch {
	case errors.Is(err, store.ErrReplay):
		return nil, pageError(oauth.CodeInvalidRequest, "request_uri was already used: start the login again")
	case errors.Is(err, store.ErrNotFound):
		return nil, pageError(oauth.CodeInvalidRequest, "request_uri is unknown, has expired or belongs to another client")
	case err != nil:
		e.cfg.Log.Error("pushed request not read", "err", err)
		return nil, pageError(oauth.CodeServerError, "the request could not be read: try again")
	}
	req, err := e.resume(snap, pr.Params)
	if err != nil || req.ClientID != c.ID {
		e.cfg.Log.Error("pushed request not decoded", "err", err)
		return nil, pageError(oauth.CodeServerError, "the request could not be read: try again")
	}
	// The registry may have changed since the push.
	if !oauth.MatchRedirectURI(c.RedirectURIs, req.RedirectURI, c.AllowLoopbackAnyPort && e.cfg.Test) {
		return nil, pageError(oauth.CodeInvalidRequest, "redirect_uri is no longer registered for this client")
	}
	return req, nil
}

// Resume decodes a request that Marshal encoded, with its client from the
// current registry: the pages call it when the person comes back.
func (e *Endpoint) Resume(b []byte) (*Request, error) {
	return e.resume(e.cfg.Registry(), b)
}

func (e *Endpoint) resume(snap *registry.Snapshot, b []byte) (*Request, error) {
	req := new(Request)
	if err := json.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("authorize: request: %w", err)
	}
	c, ok := snap.Client(req.ClientID)
	if !ok || !c.Active() {
		return nil, fmt.Errorf("authorize: client %q is gone or disabled", req.ClientID)
	}
	req.Client = c
	return req, nil
}

// Complete issues the code of a login and sends the browser back to the
// client with it (RFC 6749 §4.1.2, RFC 9207): the person has logged in as
// a says, for req.
func (e *Endpoint) Complete(ctx context.Context, w http.ResponseWriter, r *http.Request, req *Request, a Authentication) {
	now := e.cfg.Now()
	value := randomHex(32) + "-1" // HelseID's form: 64 hex digits, "-1"
	code := store.AuthorizationCode{
		ID:            store.SecretID(value),
		ClientID:      req.ClientID,
		RedirectURI:   req.RedirectURI,
		CodeChallenge: req.CodeChallenge,
		JKT:           req.JKT,
		SessionID:     a.SessionID,
		Login:         a.Person,
		Scopes:        req.Scopes,
		Resources:     req.Resources,
		Nonce:         req.Nonce,
		CreatedAt:     now,
		ExpiresAt:     now.Add(e.cfg.CodeLifetime),
	}
	if err := e.cfg.Store.CreateAuthorizationCode(ctx, code); err != nil {
		e.cfg.Log.Error("authorization code not stored", "request_id", requestid.From(ctx), "client_id", req.ClientID, "err", err)
		e.fail(w, r, req, redirectError(oauth.CodeServerError, "the login could not be completed: try again"))
		return
	}
	// On record before the browser gets the code.
	if err := e.record(r, req, a.Person.Subject, audit.OutcomeIssued, ""); err != nil {
		e.cfg.Log.Error("authorization code not audited", "request_id", requestid.From(ctx), "client_id", req.ClientID, "err", err)
		e.fail(w, r, req, redirectError(oauth.CodeTemporarilyUnavailable, "the login could not be recorded: try again later"))
		return
	}
	e.redirect(w, r, req, url.Values{"code": {value}})
}

// Fail ends a login without a code: the client gets code (access_denied,
// login_required, ...) with description at its redirect URI.
func (e *Endpoint) Fail(w http.ResponseWriter, r *http.Request, req *Request, code, description string) {
	e.fail(w, r, req, redirectError(code, "%s", description))
}

// fail answers a refused request: at the client's redirect URI once it is
// known to be the client's, else on the error page.
func (e *Endpoint) fail(w http.ResponseWriter, r *http.Request, req *Request, rerr *requestError) {
	if !rerr.redirectable || req == nil || req.RedirectURI == "" {
		status := http.StatusBadRequest
		if rerr.code == oauth.CodeServerError {
			status = http.StatusInternalServerError
		}
		e.cfg.Log.Info("authorization request refused", "request_id", requestid.From(r.Context()), "error", rerr.code, "description", rerr.description)
		e.page(w, r, status, rerr.code, rerr.description)
		return
	}
	// The client and its redirect URI are known: on record.
	if err := e.record(r, req, "", audit.OutcomeRefused, rerr.code); err != nil {
		e.cfg.Log.Error("refusal not audited", "request_id", requestid.From(r.Context()), "err", err)
		e.page(w, r, http.StatusServiceUnavailable, oauth.CodeTemporarilyUnavailable, "the request could not be recorded: try again later")
		return
	}
	e.redirect(w, r, req, url.Values{"error": {rerr.code}, "error_description": {rerr.description}})
}

// redirect sends the browser to the request's redirect URI with v, state
// and iss (RFC 9207) added to its query.
func (e *Endpoint) redirect(w http.ResponseWriter, r *http.Request, req *Request, v url.Values) {
	u, err := url.Parse(req.RedirectURI)
	if err != nil {
		e.page(w, r, http.StatusBadRequest, oauth.CodeInvalidRequest, "redirect_uri is not a URL")
		return
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", e.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (e *Endpoint) page(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	e.cfg.ErrorPage(w, r, status, code, description)
}

// PlainErrorPage is the error page until the login pages supply theirs:
// the error code and description, escaped, and nothing to follow.
func PlainErrorPage(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<title>Login error</title>\n<h1>Login error</h1>\n<p><code>%s</code></p>\n<p>%s</p>\n",
		html.EscapeString(code), html.EscapeString(description))
}

// record writes the audit record of a decision at the authorization
// endpoint: a code issued, or a request refused at the client.
func (e *Endpoint) record(r *http.Request, req *Request, subject, outcome, code string) error {
	now := e.cfg.Now()
	_, err := e.cfg.Decisions.CommitDecision(context.WithoutCancel(r.Context()), now, store.Decision{Audit: store.AuditRecord{
		Instance:        e.cfg.Instance,
		Time:            now,
		RequestID:       requestid.From(r.Context()),
		ClientRequestID: requestid.ClientFrom(r.Context()),
		Endpoint:        "authorize",
		GrantType:       oauth.GrantTypeAuthorizationCode,
		ClientID:        req.ClientID,
		Subject:         subject,
		Audience:        strings.Join(req.Resources, " "),
		Scopes:          req.Scopes,
		Outcome:         outcome,
		Error:           code,
	}})
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("authorize: crypto/rand failed: " + err.Error())
	}
	return strings.ToUpper(hex.EncodeToString(b))
}
