package login

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// Session cookie names. With HTTPS the __Host- prefix makes the browser
// refuse the cookie unless it is Secure, for Path=/ and without Domain, so
// that no other host (a sibling subdomain) can plant or shadow it. A plain
// http loopback issuer (development) cannot have a Secure cookie.
const (
	cookieSecure   = "__Host-tillit-session"
	cookieLoopback = "tillit-session"
)

func cookieName(secure bool) string {
	if secure {
		return cookieSecure
	}
	return cookieLoopback
}

// plainLoopback reports an http issuer on a loopback host: the only one
// whose session cookie is not Secure.
func plainLoopback(issuer string) bool {
	u, err := url.Parse(issuer)
	return err == nil && u.Scheme == "http" && oauth.LoopbackHost(u.Hostname())
}

// maxCookie bounds a session cookie's value before it is hashed: 32
// random bytes are 43 characters.
const maxCookie = 64

// sessionCookie is the value of the request's session cookie; "" if
// there is none.
func (l *Login) sessionCookie(r *http.Request) string {
	c, err := r.Cookie(l.cookie)
	if err != nil || c.Value == "" || len(c.Value) > maxCookie {
		return ""
	}
	return c.Value
}

// session is the request's session from the store; nil when there is
// none, it expired, or the store could not say (then the person simply
// logs in again).
func (l *Login) session(r *http.Request) *store.Session {
	v := l.sessionCookie(r)
	if v == "" {
		return nil
	}
	s, err := l.cfg.Store.Session(r.Context(), l.cfg.Now(), store.SecretID(v))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			l.cfg.Log.Warn("session not read", "request_id", requestid.From(r.Context()), "err", err)
		}
		return nil
	}
	return &s
}

// fittingSession is the request's session if it can answer req without a
// login: recent enough for max_age, at the security level asked for, from
// the identity provider asked for. Otherwise it says why not, as the
// description of login_required for prompt=none.
func (l *Login) fittingSession(r *http.Request, req *authorize.Request) (*store.Session, string) {
	s := l.session(r)
	switch {
	case s == nil:
		return nil, "no one is logged in"
	case req.MaxAge != nil && l.cfg.Now().Sub(s.Login.AuthTime) > time.Duration(*req.MaxAge)*time.Second:
		// OpenID Connect Core §3.1.2.1: an authentication older than
		// max_age must be done again (max_age=0: always).
		return nil, "the login is older than max_age"
	case req.SecurityLevel == "4" && s.Login.SecurityLevel != "4":
		return nil, "the session is not at security level 4"
	case req.IdP != "" && req.IdP != s.Login.IdP:
		return nil, "the session is with another identity provider"
	}
	return s, ""
}

// completeFromSession logs req's person in from their session. It
// reports false, having answered nothing, when the session ended since it
// was read.
func (l *Login) completeFromSession(w http.ResponseWriter, r *http.Request, req *authorize.Request, s *store.Session) bool {
	if err := l.cfg.Store.AddSessionClient(r.Context(), l.cfg.Now(), s.ID, req.ClientID); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			l.cfg.Log.Warn("session client not added", "request_id", requestid.From(r.Context()), "err", err)
		}
		return false
	}
	l.cfg.Authorize.Complete(r.Context(), w, r, req, authorize.Authentication{Person: s.Login, SessionID: s.ID})
	return true
}

// startSession makes a new session for a login and sets its cookie. The
// session the browser had, if any, is ended: every login gets a new id,
// so a session id someone planted in the browser before the login never
// names a logged-in person (session fixation).
func (l *Login) startSession(w http.ResponseWriter, r *http.Request, who store.Login, clientID string) (string, error) {
	ctx := r.Context()
	if old := l.sessionCookie(r); old != "" {
		if _, err := l.cfg.Store.DeleteSession(ctx, store.SecretID(old)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	value := base64.RawURLEncoding.EncodeToString(b)
	now := l.cfg.Now()
	s := store.Session{ID: store.SecretID(value), Login: who, CreatedAt: now, ExpiresAt: now.Add(l.cfg.SessionLifetime)}
	if err := l.cfg.Store.CreateSession(ctx, s); err != nil {
		return "", err
	}
	if err := l.cfg.Store.AddSessionClient(ctx, now, s.ID, clientID); err != nil {
		return "", err
	}
	l.setCookie(w, value, false)
	return s.ID, nil
}

// setCookie sets the session cookie, or clears it. It has no expiry: it
// ends with the browser, and the session record's expiry bounds it on
// the server whatever the browser keeps.
func (l *Login) setCookie(w http.ResponseWriter, value string, clear bool) {
	c := &http.Cookie{
		Name: l.cookie, Value: value, Path: "/",
		HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteLaxMode,
	}
	if clear {
		c.Value, c.MaxAge = "", -1
	}
	http.SetCookie(w, c)
}
