package page

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// SetHeaders sets the security headers of a login page. The content
// security policy lets the page load only its own stylesheet and post forms
// only to its own origin and to formTargets. Chrome applies form-action to
// the redirects that follow a form post too, so a form whose answer
// redirects to a client (the TestIDP form, logout confirmation) must list
// the client's origin there (Origin makes one from a redirect URI). Targets
// that are not plain origins are left out: a policy is never built from
// text that could add a directive.
func SetHeaders(w http.ResponseWriter, formTargets ...string) {
	h := w.Header()
	actions := []string{"'self'"}
	for _, t := range formTargets {
		if o, err := Origin(t); err == nil && o == t {
			actions = append(actions, o)
		}
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action "+
		strings.Join(actions, " ")+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Origin returns the origin (scheme://host[:port]) of an absolute http or
// https URI, such as a client's redirect URI, for SetHeaders.
func Origin(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return "", errors.New("page: not an absolute http(s) URI")
	}
	// url.Parse accepts characters in the host that would break out of a
	// policy source; allow only those a host, an IPv6 literal and a port use.
	for _, c := range u.Host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']'
		if !ok {
			return "", errors.New("page: host has characters an origin cannot have")
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}
