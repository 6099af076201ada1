package oauth

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// MaxRedirectURI bounds a redirect URI, registered or sent.
const MaxRedirectURI = 2000

// CheckRedirectURI checks a redirect URI for registration (RFC 6749 §3.1.2,
// RFC 9700 §2.1): absolute, without a fragment or user information, https,
// or http only to a loopback address (RFC 8252 §7.3), where no one else can
// listen.
func CheckRedirectURI(raw string) error {
	if raw == "" || len(raw) > MaxRedirectURI {
		return errors.New("must be an absolute URL of at most 2000 characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute URL with a host")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment (RFC 6749 §3.1.2)")
	case u.User != nil:
		return errors.New("must not carry user information")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && LoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("http is allowed only to a loopback address (127.0.0.1, [::1], localhost); use https")
	}
	return errors.New("must be https (or http to a loopback address)")
}

// LoopbackHost reports a host name that only reaches this machine.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MatchRedirectURI reports whether sent is one of the registered redirect
// URIs: compared exactly (RFC 9700 §4.1.3), except that, when anyPort is
// set, an http loopback URI may differ from a registered one in its port
// alone (RFC 8252 §7.3: a native app takes whatever port is free).
func MatchRedirectURI(registered []string, sent string, anyPort bool) bool {
	for _, r := range registered {
		if r == sent {
			return true
		}
	}
	if !anyPort || len(sent) > MaxRedirectURI {
		return false
	}
	s, err := url.Parse(sent)
	if err != nil || s.Scheme != "http" || !LoopbackHost(s.Hostname()) || s.User != nil || s.Fragment != "" || strings.Contains(sent, "#") {
		return false
	}
	if p := s.Port(); p != "" && !validPort(p) {
		return false
	}
	for _, r := range registered {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || !LoopbackHost(u.Hostname()) {
			continue
		}
		if u.Hostname() == s.Hostname() && u.EscapedPath() == s.EscapedPath() && u.RawQuery == s.RawQuery {
			return true
		}
	}
	return false
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n < 65536
}
