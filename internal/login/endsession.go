package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/login/csrf"
	"github.com/tillit-sts/tillit/internal/login/page"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// Bounds of an end-session request.
const (
	maxEndSessionQuery = 16 << 10
	maxHint            = 12 << 10
	maxState           = 512
)

// serveEndSession is RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0): it ends the browser's session and sends the browser back
// to the client's registered post-logout redirect URI, or shows that the
// person is logged out.
//
// An id_token_hint must be an ID token this server signed, with the key
// it publishes; the client it names (aud) decides which post-logout URIs
// are allowed. An expired hint is accepted: logging out is what one does
// after a while. Without a hint that matches the browser's session, the
// person confirms on a page (a CSRF-protected form), so that another site
// cannot log them out by sending them here. A post_logout_redirect_uri is
// followed only when it is registered, exactly, for the client the hint
// (or client_id) names; otherwise the logout ends on a page, so that this
// endpoint never redirects anywhere a client did not register.
func (l *Login) serveEndSession(w http.ResponseWriter, r *http.Request) {
	lang := page.Negotiate("", r)
	var values url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", "the request is not a valid form")
			return
		}
		values = r.PostForm
	} else {
		var err error
		if len(r.URL.RawQuery) > maxEndSessionQuery {
			l.endSessionError(w, r, lang, http.StatusRequestURITooLong, "invalid_request", "the request is too long")
			return
		}
		if values, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", "the request is not a valid query")
			return
		}
	}
	if repeated(values) {
		l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", "a parameter is given more than once")
		return
	}
	lang = page.Negotiate(values.Get("ui_locales"), r)
	snap := l.cfg.Registry()

	clientID := values.Get("client_id")
	var hint *hintClaims
	if raw := values.Get("id_token_hint"); raw != "" {
		h, err := l.verifyHint(raw)
		if err != nil {
			l.cfg.Log.Info("id_token_hint refused", "request_id", requestid.From(r.Context()), "err", err)
			l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", "id_token_hint is not an ID token this server issued")
			return
		}
		if clientID != "" && clientID != h.client {
			l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", "client_id is not the client the id_token_hint was issued to")
			return
		}
		hint, clientID = h, h.client
	}
	var client *registry.Client
	if clientID != "" {
		c, ok := snap.Client(clientID)
		if !ok {
			l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", "unknown client")
			return
		}
		client = c
	}
	state := values.Get("state")
	if len(state) > maxState {
		l.endSessionError(w, r, lang, http.StatusBadRequest, "invalid_request", fmt.Sprintf("state is longer than %d characters", maxState))
		return
	}
	redirect := ""
	if u := values.Get("post_logout_redirect_uri"); u != "" {
		if client != nil && len(u) <= oauth.MaxRedirectURI && slices.Contains(client.PostLogoutRedirectURIs, u) {
			redirect = u
		} else {
			// Logged out all the same, but shown a page: never a
			// redirect to a URI no client registered.
			l.cfg.Log.Info("post_logout_redirect_uri not followed", "request_id", requestid.From(r.Context()), "client_id", clientID)
			l.refuse(r, "unregistered_post_logout_redirect_uri", http.StatusOK)
		}
	}

	cookie := l.sessionCookie(r)
	sess := l.session(r)
	confirmed := false
	if r.Method == http.MethodPost && values.Has(csrf.FieldName) {
		// The confirmation form, bound to the session cookie's value.
		if err := l.csrf.Check(cookie, formLogout, values.Get(csrf.FieldName)); err != nil {
			l.refuse(r, "invalid_csrf", http.StatusForbidden)
			l.render(w, r, http.StatusForbidden, lang, &page.Error{Kind: page.ErrorForm})
			return
		}
		confirmed = true
	}
	if sess != nil && !confirmed && !hint.matches(sess) {
		hidden := []page.Field{}
		for _, f := range []page.Field{{Name: "client_id", Value: clientID}, {Name: "post_logout_redirect_uri", Value: redirect},
			{Name: "state", Value: state}, {Name: "ui_locales", Value: values.Get("ui_locales")}} {
			if f.Value != "" {
				hidden = append(hidden, f)
			}
		}
		p := &page.Logout{Form: page.Form{Action: PathEndSession, CSRF: l.csrf.Token(cookie, formLogout), Hidden: hidden}}
		if client != nil {
			p.ClientName = client.Name
		}
		l.render(w, r, http.StatusOK, lang, p, redirectOrigin(redirect))
		return
	}
	if sess != nil {
		ended, err := l.cfg.Store.DeleteSession(r.Context(), sess.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			l.serverError(w, r, lang, fmt.Errorf("login: end session: %w", err))
			return
		default:
			l.recordLogout(r, ended, clientID)
		}
	}
	if cookie != "" {
		l.setCookie(w, "", true)
	}
	w.Header().Set("Cache-Control", "no-store")
	if redirect != "" {
		u, err := url.Parse(redirect)
		if err != nil {
			l.serverError(w, r, lang, err)
			return
		}
		if state != "" {
			q := u.Query()
			q.Set("state", state)
			u.RawQuery = q.Encode()
		}
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	l.render(w, r, http.StatusOK, lang, &page.LoggedOut{})
}

// endSessionError shows a refused end-session request on the error page;
// nothing is ended and nothing redirected.
func (l *Login) endSessionError(w http.ResponseWriter, r *http.Request, lang page.Lang, status int, code, description string) {
	l.refuse(r, code, status)
	l.render(w, r, status, lang, &page.Error{Kind: page.ErrorRequest, Detail: code + ": " + description, Reference: requestid.From(r.Context())})
}

// recordLogout writes the audit record of a session ended: the person and
// the client that asked (or the session's first). A failure is logged:
// the session is gone either way, and logging out must not depend on the
// audit log.
func (l *Login) recordLogout(r *http.Request, s store.Session, clientID string) {
	if l.cfg.Decisions == nil {
		return
	}
	if clientID == "" && len(s.Clients) > 0 {
		clientID = s.Clients[0]
	}
	now := l.cfg.Now()
	_, err := l.cfg.Decisions.CommitDecision(context.WithoutCancel(r.Context()), now, store.Decision{Audit: store.AuditRecord{
		Instance:        l.cfg.Instance,
		Time:            now,
		RequestID:       requestid.From(r.Context()),
		ClientRequestID: requestid.ClientFrom(r.Context()),
		Endpoint:        "endsession",
		ClientID:        clientID,
		Subject:         s.Login.Subject,
		Outcome:         audit.OutcomeRevoked,
	}})
	if err != nil {
		l.cfg.Log.Error("logout not audited", "request_id", requestid.From(r.Context()), "err", err)
	}
}

// hintClaims is what end-session reads of an id_token_hint.
type hintClaims struct {
	client, subject, sid string
}

// matches reports whether the hint is about the session: issued to one of
// its clients, in it (its sid) or, for a hint without sid, to its person
// (sub).
func (h *hintClaims) matches(s *store.Session) bool {
	if h == nil || !slices.Contains(s.Clients, h.client) {
		return false
	}
	if h.sid != "" {
		return h.sid == idtoken.SID(s.ID)
	}
	return h.subject != "" && h.subject == s.Login.Subject
}

// verifyHint checks that raw is an ID token this server signed: a JWS
// signed by a key of its published JWKS (found by kid, never a key the
// token carries or points to), iss this issuer, aud one client (or azp
// naming one of several). Its expiry is not checked (RP-Initiated Logout
// §2: an expired ID token is a valid hint).
func (l *Login) verifyHint(raw string) (*hintClaims, error) {
	if len(raw) > maxHint {
		return nil, errors.New("login: hint too long")
	}
	j, err := jws.Parse(raw, jws.Algorithms)
	if err != nil {
		return nil, err
	}
	// An access token (at+jwt) is not an ID token.
	if t := strings.ToLower(j.Header.Typ); t != "" && t != "jwt" {
		return nil, fmt.Errorf("login: hint typ %q", j.Header.Typ)
	}
	set := l.cfg.PublicKeys()
	keys := set.Key(j.Header.Kid)
	if j.Header.Kid == "" || len(keys) != 1 {
		return nil, errors.New("login: hint signed by no key of ours")
	}
	if err := j.Verify(keys[0].Key); err != nil {
		return nil, err
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Azp string          `json:"azp"`
		Sid string          `json:"sid"`
	}
	if err := json.Unmarshal(j.Payload, &c); err != nil {
		return nil, fmt.Errorf("login: hint claims: %w", err)
	}
	if c.Iss != l.cfg.Issuer {
		return nil, fmt.Errorf("login: hint iss %q", c.Iss)
	}
	var aud []string
	var one string
	if err := json.Unmarshal(c.Aud, &one); err == nil {
		aud = []string{one}
	} else if err := json.Unmarshal(c.Aud, &aud); err != nil {
		return nil, errors.New("login: hint aud is not a string or a list")
	}
	h := &hintClaims{subject: c.Sub, sid: c.Sid}
	switch {
	case len(aud) == 1 && aud[0] != "" && (c.Azp == "" || c.Azp == aud[0]):
		h.client = aud[0]
	case len(aud) > 1 && c.Azp != "" && slices.Contains(aud, c.Azp):
		h.client = c.Azp
	default:
		return nil, errors.New("login: hint names no one client")
	}
	return h, nil
}
