package resource

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode"
)

// Middleware validates every request before next sees it. A refused request
// gets the answer WriteError writes; an accepted one reaches next with its
// Claims and its raw access token in the context (ClaimsFromContext,
// AccessTokenFromContext) and, when the validator uses nonces, a fresh
// DPoP-Nonce header on the response.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, token, err := v.validate(r)
		if err != nil {
			v.refuse(w, r, err)
			return
		}
		if v.nonces != nil {
			w.Header().Set("DPoP-Nonce", v.nonces.Issue(v.now()))
		}
		next.ServeHTTP(w, r.WithContext(withValidated(r.Context(), c, token)))
	})
}

// RequireScopes returns middleware for routes that need scopes beyond
// Config.Scopes. It goes inside Middleware, which puts the claims it reads
// in the context; a request without them gets 401.
func (v *Validator) RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := ClaimsFromContext(r.Context())
			if !ok {
				v.refuse(w, r, fail(ErrNoToken, "the request has no validated access token", nil))
				return
			}
			if err := v.checkScopes(c, scopes); err != nil {
				v.refuse(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (v *Validator) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if v.onError != nil {
		v.onError(r, err)
	}
	v.WriteError(w, err)
}

// WriteError answers a refused request as RFC 6750 §3 and RFC 9449 §7.1
// say: the status of the *Error, a WWW-Authenticate challenge of the
// route's scheme with error, error_description, the required scope (for
// insufficient_scope) and the accepted proof algorithms (algs), a
// DPoP-Nonce header with use_dpop_nonce, and the error as a JSON body. An
// error that is not an *Error becomes a bare 500.
func (v *Validator) WriteError(w http.ResponseWriter, err error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	var e *Error
	if !errors.As(err, &e) {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	if e.Status == http.StatusServiceUnavailable {
		// The API, not the caller, is at fault: no challenge, since a new
		// token would not help.
		h.Set("Retry-After", "5")
	} else {
		h.Set("WWW-Authenticate", v.challenge(e))
	}
	if e.Code == CodeUseDPoPNonce && v.nonces != nil {
		h.Set("DPoP-Nonce", v.nonces.Issue(v.now()))
	}
	if e.Code == "" {
		w.WriteHeader(e.Status)
		return
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(body)
}

// challenge renders the WWW-Authenticate value for e.
func (v *Validator) challenge(e *Error) string {
	var b strings.Builder
	b.WriteString(v.scheme())
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quotable(value))
		b.WriteByte('"')
		sep = ", "
	}
	if e.Code != "" {
		param("error", e.Code)
		if e.Description != "" {
			param("error_description", e.Description)
		}
	}
	if e.scope != "" {
		param("scope", e.scope)
	}
	if !v.bearer {
		param("algs", v.algNames)
	}
	return b.String()
}

// quotable keeps a value inside an RFC 9110 quoted-string and within what
// RFC 6750 §3 allows in error_description: printable ASCII without " and \.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
