package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/idp/oidc"
	"github.com/tillit-sts/tillit/internal/login/csrf"
	"github.com/tillit-sts/tillit/internal/login/page"
	"github.com/tillit-sts/tillit/internal/login/testidp"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// Paths of the login pages and of end-session (profile §1.2).
const (
	PathChoose     = "/login/idp"
	PathTestIDP    = testidp.DefaultPath
	PathEndSession = "/connect/endsession"
)

// Default lifetimes. A transaction covers one visit to the pages, typing
// included; a session is a working day, like HelseID's.
const (
	DefaultTransactionLifetime = 15 * time.Minute
	DefaultSessionLifetime     = 8 * time.Hour
)

// CSRF form names: a token of one form is no good on another.
const (
	formChoose = "idp"
	formLogout = "logout"
)

// fieldTx is the hidden field (and, on the way to the TestIDP, the query
// parameter) that carries the sealed transaction.
const fieldTx = "tx"

// maxForm bounds a posted login form: a sealed transaction, a token and
// a few short fields.
const maxForm = maxSealed + 8<<10

// Store is what logins keep (store.Store): sessions.
type Store interface {
	CreateSession(ctx context.Context, s store.Session) error
	Session(ctx context.Context, now time.Time, id string) (store.Session, error)
	AddSessionClient(ctx context.Context, now time.Time, id, clientID string) error
	DeleteSession(ctx context.Context, id string) (store.Session, error)
}

// Config wires the login pages.
type Config struct {
	Issuer    string
	Authorize *authorize.Endpoint
	Registry  func() *registry.Snapshot
	Store     Store
	// Secret is the login secret (keys.Secret with store.PurposeLogin);
	// the CSRF and transaction keys are derived from it.
	Secret []byte
	// Test is a test environment: only then is the TestIDP offered.
	Test bool
	// Subject makes the person's sub from their pid (identity.Pseudonym).
	Subject func(pid string) (string, error)
	// PublicKeys are the keys that sign ID tokens, to check an
	// id_token_hint at end-session.
	PublicKeys func() jose.JSONWebKeySet
	// Attempts limits login attempts per source address: starting a
	// login and posting a login form. Nil: no limit.
	Attempts *ratelimit.Limiter
	// Refusals counts the failed logins, which get no audit record of
	// their own.
	Refusals *audit.Refusals
	// Decisions records logouts in the audit log; Instance names the chain.
	Decisions authorize.Decisions
	Instance  string
	// UpstreamStates keeps the state of logins at upstream OpenID Connect
	// providers (store.Store); nil offers none of them.
	UpstreamStates oidc.States
	// UpstreamKey returns the private key that signs Tillit's
	// private_key_jwt assertions at the provider named idp
	// (keys.Manager.UpstreamKey); nil leaves such providers without a key.
	UpstreamKey func(ctx context.Context, idp string) (*jose.JSONWebKey, error)
	// UpstreamHTTPClient reaches upstream providers; nil: a client with a
	// 10-second timeout.
	UpstreamHTTPClient *http.Client
	// Lifetimes; zero means the default.
	TransactionLifetime, SessionLifetime time.Duration
	Now                                  func() time.Time
	Log                                  *slog.Logger
}

// Login is the person's side of a login: the authorize.Login of the
// authorization endpoint, the identity provider choice, the TestIDP's
// testidp.Login, sessions and end-session.
type Login struct {
	cfg     Config
	csrf    *csrf.Key
	sealer  *sealer
	secure  bool
	cookie  string
	testIDP *testidp.Handler
	// upstreams are the upstream providers, made on first use.
	upstreams upstreams
}

// New returns the login pages.
func New(cfg Config) (*Login, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TransactionLifetime <= 0 {
		cfg.TransactionLifetime = DefaultTransactionLifetime
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.Authorize == nil || cfg.Registry == nil || cfg.Store == nil || cfg.Subject == nil || cfg.PublicKeys == nil {
		return nil, errors.New("login: Authorize, Registry, Store, Subject and PublicKeys are required")
	}
	ck, err := deriveKey(cfg.Secret, "tillit/login/csrf")
	if err != nil || len(cfg.Secret) < csrf.MinKeySize {
		return nil, fmt.Errorf("login: the login secret must have at least %d bytes", csrf.MinKeySize)
	}
	l := &Login{cfg: cfg}
	if l.csrf, err = csrf.New(ck); err != nil {
		return nil, err
	}
	if l.sealer, err = newSealer(cfg.Secret); err != nil {
		return nil, err
	}
	l.secure = !plainLoopback(cfg.Issuer)
	l.cookie = cookieName(l.secure)
	if cfg.Test {
		l.testIDP = &testidp.Handler{Name: testidp.DefaultName, Path: PathTestIDP, CSRF: l.csrf, Login: (*testIDPLogin)(l), Now: cfg.Now, Log: cfg.Log}
	}
	return l, nil
}

// Mount registers the pages: the IdP choice, the TestIDP (in a test
// environment only), end-session and the stylesheet.
func (l *Login) Mount(mux *http.ServeMux) {
	page.Mount(mux)
	mux.HandleFunc("POST "+PathChoose, l.serveChoose)
	mux.HandleFunc("GET "+PathCallback+"/{idp}", l.serveCallback)
	if l.testIDP != nil {
		mux.Handle("GET "+PathTestIDP, l.counted(l.testIDP))
		mux.Handle("POST "+PathTestIDP, l.limited(l.counted(l.testIDP)))
	}
	mux.HandleFunc("GET "+PathEndSession, l.serveEndSession)
	mux.HandleFunc("POST "+PathEndSession, l.serveEndSession)
}

// EndSessionURL is end-session's absolute URL, for discovery.
func (l *Login) EndSessionURL() string { return l.cfg.Issuer + PathEndSession }

// Start takes over a validated authorization request: a session that
// fits it completes it without a page; otherwise the person chooses an
// identity provider (or is sent to the only one, or the one acr_values
// names) and logs in there.
func (l *Login) Start(w http.ResponseWriter, r *http.Request, req *authorize.Request) {
	lang := page.Negotiate(req.UILocales, r)
	if !l.allow(w, r, lang) {
		return
	}
	sess, why := l.fittingSession(r, req)
	if sess != nil && req.Prompt != "login" {
		if l.completeFromSession(w, r, req, sess) {
			return
		}
		why = "no one is logged in"
	}
	if req.Prompt == "none" {
		l.cfg.Authorize.Fail(w, r, req, authorize.CodeLoginRequired, why)
		return
	}
	offered := l.offered()
	var chosen *store.IdentityProvider
	switch {
	case req.IdP != "":
		i := slices.IndexFunc(offered, func(p *store.IdentityProvider) bool { return p.Name == req.IdP })
		if i < 0 {
			l.cfg.Authorize.Fail(w, r, req, oauth.CodeInvalidRequest, fmt.Sprintf("identity provider %q is not offered here", req.IdP))
			return
		}
		chosen = offered[i]
	case len(offered) == 0:
		l.cfg.Authorize.Fail(w, r, req, oauth.CodeTemporarilyUnavailable, "no identity provider is offered")
		return
	case len(offered) == 1:
		chosen = offered[0]
	}
	body, err := req.Marshal()
	if err != nil {
		l.serverError(w, r, lang, err)
		return
	}
	tx := &transaction{ID: newTxID(), Request: body, Expires: l.cfg.Now().Add(l.cfg.TransactionLifetime).Unix()}
	if chosen != nil {
		l.toProvider(w, r, req, tx, chosen, lang)
		return
	}
	sealed, err := l.sealer.seal(tx)
	if err != nil {
		l.serverError(w, r, lang, err)
		return
	}
	p := &page.ChooseIDP{
		Form:       page.Form{Action: PathChoose, CSRF: l.csrf.Token(tx.ID, formChoose), Hidden: []page.Field{{Name: fieldTx, Value: sealed}}},
		ClientName: req.Client.Name,
	}
	// The choice is answered with a redirect to the client (an error) or
	// to an upstream provider's authorization endpoint: the form-action
	// must allow both, or the browser stops the redirect.
	targets := []string{redirectOrigin(req.RedirectURI)}
	for _, o := range offered {
		name := o.DisplayName
		if name == "" {
			name = o.Name
		}
		p.Providers = append(p.Providers, page.Provider{Name: o.Name, DisplayName: name})
		if o.Type == store.IdentityProviderOIDC {
			targets = append(targets, l.upstreamOrigin(r, o))
		}
	}
	l.render(w, r, http.StatusOK, lang, p, targets...)
}

// serveChoose takes the IdP choice: a CSRF-checked post of idp=<name>.
func (l *Login) serveChoose(w http.ResponseWriter, r *http.Request) {
	lang := page.Negotiate("", r)
	if !l.allow(w, r, lang) {
		return
	}
	tx, req, ok := l.postedTransaction(w, r, formChoose)
	if !ok {
		return
	}
	lang = page.Negotiate(req.UILocales, r)
	name := r.PostForm.Get("idp")
	offered := l.offered()
	i := slices.IndexFunc(offered, func(p *store.IdentityProvider) bool { return p.Name == name })
	if i < 0 {
		l.refuse(r, "unknown_idp", http.StatusBadRequest)
		l.render(w, r, http.StatusBadRequest, lang, &page.Error{Kind: page.ErrorRequest,
			Detail: "the identity provider chosen is not offered", Reference: requestid.From(r.Context())})
		return
	}
	l.toProvider(w, r, req, tx, offered[i], lang)
}

// toProvider sends the browser to the identity provider's login.
func (l *Login) toProvider(w http.ResponseWriter, r *http.Request, req *authorize.Request, tx *transaction, p *store.IdentityProvider, lang page.Lang) {
	switch {
	case p.Type == store.IdentityProviderTestIdP && l.testIDP != nil:
		tx.IdP = p.Name
		sealed, err := l.sealer.seal(tx)
		if err != nil {
			l.serverError(w, r, lang, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, PathTestIDP+"?"+url.Values{fieldTx: {sealed}}.Encode(), http.StatusSeeOther)
	case p.Type == store.IdentityProviderOIDC && p.OIDC != nil && l.cfg.UpstreamStates != nil:
		l.toUpstream(w, r, req, tx, p, lang)
	default:
		// offered() lists only providers this build logs in with.
		l.cfg.Authorize.Fail(w, r, req, oauth.CodeTemporarilyUnavailable, fmt.Sprintf("identity provider %q cannot be used", p.Name))
	}
}

// offered are the identity providers a person may choose (Offers).
func (l *Login) offered() []*store.IdentityProvider {
	var out []*store.IdentityProvider
	for _, p := range l.cfg.Registry().IdentityProviders() {
		if Offers(p, l.cfg.Test) {
			out = append(out, p)
		}
	}
	return out
}

// Offers reports whether a person may log in at p here: enabled, and of a
// type this build logs in with. The TestIDP is offered only in a test
// environment (test), whatever the registry says; an upstream OpenID
// Connect provider once it is configured (an issuer and a client).
// Discovery's available_idps uses the same rule.
func Offers(p *store.IdentityProvider, test bool) bool {
	if p.Status != store.StatusActive {
		return false
	}
	switch p.Type {
	case store.IdentityProviderTestIdP:
		return test
	case store.IdentityProviderOIDC:
		return p.OIDC != nil
	}
	return false
}

// postedTransaction reads a posted form of one of the pages: bounded,
// each field once, its transaction open and unexpired, its CSRF token
// that of form for the transaction, its request's client still there.
// On failure it has answered and counted the refusal.
func (l *Login) postedTransaction(w http.ResponseWriter, r *http.Request, form string) (*transaction, *authorize.Request, bool) {
	lang := page.Negotiate("", r)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || repeated(r.PostForm) {
		l.refuse(r, "invalid_form", http.StatusBadRequest)
		l.render(w, r, http.StatusBadRequest, lang, &page.Error{Kind: page.ErrorForm})
		return nil, nil, false
	}
	tx, req, err := l.openTx(r.PostForm.Get(fieldTx))
	if err != nil {
		l.expired(w, r, lang, err)
		return nil, nil, false
	}
	lang = page.Negotiate(req.UILocales, r)
	if err := l.csrf.Check(tx.ID, form, r.PostForm.Get(csrf.FieldName)); err != nil {
		l.refuse(r, "invalid_csrf", http.StatusForbidden)
		l.render(w, r, http.StatusForbidden, lang, &page.Error{Kind: page.ErrorForm})
		return nil, nil, false
	}
	return tx, req, true
}

// openTx opens a sealed transaction and resumes its request against the
// current registry.
func (l *Login) openTx(sealed string) (*transaction, *authorize.Request, error) {
	tx, err := l.sealer.open(sealed, l.cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	req, err := l.cfg.Authorize.Resume(tx.Request)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errTxInvalid, err)
	}
	// The registry may have changed since the request was validated.
	if !oauth.MatchRedirectURI(req.Client.RedirectURIs, req.RedirectURI, req.Client.AllowLoopbackAnyPort && l.cfg.Test) {
		return nil, nil, fmt.Errorf("%w: redirect_uri no longer registered", errTxInvalid)
	}
	return tx, req, nil
}

// expired answers a request whose transaction is gone or was never ours.
func (l *Login) expired(w http.ResponseWriter, r *http.Request, lang page.Lang, err error) {
	code := "expired"
	if !errors.Is(err, errTxExpired) {
		code = "invalid_transaction"
	}
	l.cfg.Log.Info("login transaction refused", "request_id", requestid.From(r.Context()), "err", err)
	l.refuse(r, code, http.StatusBadRequest)
	l.render(w, r, http.StatusBadRequest, lang, &page.Error{Kind: page.ErrorExpired})
}

// allow takes one login attempt from the source address's budget, or
// answers 429.
func (l *Login) allow(w http.ResponseWriter, r *http.Request, lang page.Lang) bool {
	ok, wait := l.cfg.Attempts.Allow(source(r), l.cfg.Now())
	if ok {
		return true
	}
	l.refuse(r, oauth.CodeTemporarilyUnavailable, http.StatusTooManyRequests)
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
	l.render(w, r, http.StatusTooManyRequests, lang, &page.Error{Kind: page.ErrorBusy})
	return false
}

// refuse counts a failed login in the refusals aggregate: failed and
// abandoned logins get no audit record of their own.
func (l *Login) refuse(r *http.Request, code string, status int) {
	l.cfg.Refusals.Add("login", code, status, source(r))
}

func (l *Login) serverError(w http.ResponseWriter, r *http.Request, lang page.Lang, err error) {
	l.cfg.Log.Error("login failed", "request_id", requestid.From(r.Context()), "err", err)
	l.render(w, r, http.StatusInternalServerError, lang, &page.Error{Kind: page.ErrorServer, Reference: requestid.From(r.Context())})
}

func (l *Login) render(w http.ResponseWriter, r *http.Request, status int, lang page.Lang, p page.Page, formTargets ...string) {
	if err := page.Render(w, status, lang, p, formTargets...); err != nil {
		l.cfg.Log.Error("login page not rendered", "request_id", requestid.From(r.Context()), "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// ErrorPage shows an error of the authorization endpoint that cannot go
// to the client (authorize.Config.ErrorPage) on the login pages' error
// page.
func ErrorPage(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	kind := page.ErrorRequest
	if code == oauth.CodeServerError || code == oauth.CodeTemporarilyUnavailable {
		kind = page.ErrorServer
	}
	p := &page.Error{Kind: kind, Detail: code + ": " + description, Reference: requestid.From(r.Context())}
	if err := page.Render(w, status, page.Negotiate("", r), p); err != nil {
		authorize.PlainErrorPage(w, r, status, code, description)
	}
}

// repeated reports a form that gives a field twice: which of two values
// a handler reads is a guess an attacker could exploit.
func repeated(v url.Values) bool {
	for _, vs := range v {
		if len(vs) > 1 {
			return true
		}
	}
	return false
}

// source is the request's source address (behind trusted proxies, the
// server has already put the client's address in RemoteAddr).
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// redirectOrigin is the origin of a redirect URI, for the form-action of a
// page whose form may answer with a redirect to it; "" if it has none.
func redirectOrigin(uri string) string {
	o, err := page.Origin(uri)
	if err != nil {
		return ""
	}
	return o
}
