package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/idp/oidc"
	"github.com/tillit-sts/tillit/internal/login/page"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// PathCallback is where upstream OpenID Connect providers send the person
// back: PathCallback + "/<provider name>".
const PathCallback = "/login/callback"

// upstreams are the oidc.Providers of the registry's oidc identity
// providers, made on first use and made again when a provider's settings
// change.
type upstreams struct {
	mu sync.Mutex
	m  map[string]upstream
}

type upstream struct {
	settings store.UpstreamOIDC
	p        *oidc.Provider
}

// upstream returns the provider for p.
func (l *Login) upstream(p *store.IdentityProvider) (*oidc.Provider, error) {
	if p.OIDC == nil || l.cfg.UpstreamStates == nil {
		return nil, fmt.Errorf("login: identity provider %q is not configured", p.Name)
	}
	u := &l.upstreams
	u.mu.Lock()
	defer u.mu.Unlock()
	if e, ok := u.m[p.Name]; ok && reflect.DeepEqual(e.settings, *p.OIDC) {
		return e.p, nil
	}
	var key func(context.Context) (*jose.JSONWebKey, error)
	if l.cfg.UpstreamKey != nil {
		name := p.Name
		key = func(ctx context.Context) (*jose.JSONWebKey, error) { return l.cfg.UpstreamKey(ctx, name) }
	}
	prov, err := oidc.New(oidc.Config{
		Name:              p.Name,
		Settings:          *p.OIDC,
		RedirectURI:       l.cfg.Issuer + PathCallback + "/" + p.Name,
		States:            l.cfg.UpstreamStates,
		AllowSyntheticPID: l.cfg.Test,
		AssertionKey:      key,
		HTTPClient:        l.cfg.UpstreamHTTPClient,
		Now:               l.cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	if u.m == nil {
		u.m = map[string]upstream{}
	}
	u.m[p.Name] = upstream{settings: *p.OIDC, p: prov}
	return prov, nil
}

// upstreamOrigin is the origin of a provider's authorization endpoint,
// from its discovery document (cached); "" if that cannot be had now, and
// then choosing the provider fails as it would anyway.
func (l *Login) upstreamOrigin(r *http.Request, p *store.IdentityProvider) string {
	prov, err := l.upstream(p)
	if err != nil {
		return ""
	}
	o, err := prov.AuthorizationOrigin(r.Context())
	if err != nil {
		l.cfg.Log.Warn("upstream discovery failed", "request_id", requestid.From(r.Context()), "idp", p.Name, "err", err)
		return ""
	}
	return o
}

// toUpstream sends the browser to an upstream provider's login, the
// sealed transaction kept with the state until it comes back.
func (l *Login) toUpstream(w http.ResponseWriter, r *http.Request, req *authorize.Request, tx *transaction, p *store.IdentityProvider, lang page.Lang) {
	prov, err := l.upstream(p)
	if err != nil {
		l.serverError(w, r, lang, err)
		return
	}
	tx.IdP = p.Name
	sealed, err := l.sealer.seal(tx)
	if err != nil {
		l.serverError(w, r, lang, err)
		return
	}
	to, err := prov.Start(r.Context(), []byte(sealed))
	if err != nil {
		l.cfg.Log.Warn("upstream login not started", "request_id", requestid.From(r.Context()), "idp", p.Name, "err", err)
		l.cfg.Authorize.Fail(w, r, req, oauth.CodeTemporarilyUnavailable, fmt.Sprintf("identity provider %q cannot be reached", p.Name))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// serveCallback completes a login at an upstream provider.
func (l *Login) serveCallback(w http.ResponseWriter, r *http.Request) {
	lang := page.Negotiate("", r)
	if !l.allow(w, r, lang) {
		return
	}
	name := r.PathValue("idp")
	offered := l.offered()
	var prov *oidc.Provider
	for _, p := range offered {
		if p.Name == name && p.Type == store.IdentityProviderOIDC {
			var err error
			if prov, err = l.upstream(p); err != nil {
				l.serverError(w, r, lang, err)
				return
			}
		}
	}
	if prov == nil {
		l.refuse(r, "unknown_idp", http.StatusNotFound)
		l.render(w, r, http.StatusNotFound, lang, &page.Error{Kind: page.ErrorRequest,
			Detail: "the identity provider is not offered", Reference: requestid.From(r.Context())})
		return
	}
	res, err := prov.Callback(r.Context(), r.URL.Query())
	if res == nil {
		// No state of ours: nothing to answer but the person.
		l.expired(w, r, lang, fmt.Errorf("%w: %w", errTxInvalid, err))
		return
	}
	// From here the answer goes back to the client: as a page, not a
	// redirect (onwardPage says why).
	w = &onwardPage{ResponseWriter: w, lang: lang}
	tx, req, txErr := l.openTx(string(res.Return))
	if txErr == nil && tx.IdP != name {
		txErr = fmt.Errorf("%w: the transaction is not %s's", errTxInvalid, name)
	}
	if txErr != nil {
		l.expired(w, r, lang, txErr)
		return
	}
	if err != nil {
		var pe *oidc.ProviderError
		desc := fmt.Sprintf("the login at identity provider %q failed", name)
		if errors.As(err, &pe) && pe.Endpoint == "authorization" && pe.Canceled() {
			desc = fmt.Sprintf("the person canceled the login at identity provider %q", name)
		}
		l.cfg.Log.Info("upstream login failed", "request_id", requestid.From(r.Context()), "idp", name, "err", err)
		l.refuse(r, "upstream_failed", http.StatusSeeOther)
		l.cfg.Authorize.Fail(w, r, req, authorize.CodeAccessDenied, desc)
		return
	}
	if err := l.finish(w, r, req, res.Person); err != nil {
		l.serverError(w, r, lang, err)
	}
}
