package dpop

import (
	"errors"
	"net/url"
	"strings"
)

// normalizeURL returns the form of an http(s) URL that htu is compared in
// (RFC 9449 §4.3 point 9, RFC 3986 §6.2.2 and §6.2.3): lower-case scheme and
// host, no default port, no query, no fragment, "/" for an empty path. User
// information is refused: it has no place in an htu.
func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("not an http or https URL")
	}
	if u.Host == "" {
		return "", errors.New("URL has no host")
	}
	if u.User != nil {
		return "", errors.New("URL has user information")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}
