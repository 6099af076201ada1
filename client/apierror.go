package client

import (
	"fmt"
	"net/http"
	"strings"
)

// APIError is an API's refusal of a call: an answer of 401 or 403 and the
// challenge of its WWW-Authenticate header (RFC 6750 §3, RFC 9449 §7.1).
// ResponseError makes one from a response; get it from an error with
// errors.As.
type APIError struct {
	StatusCode int
	// Scheme is the challenge's scheme, "DPoP" or "Bearer"; empty if the
	// API sent none.
	Scheme string
	// Code is the error parameter, e.g. "invalid_token",
	// "insufficient_scope" or "invalid_dpop_proof"; empty if the API sent
	// none (RFC 6750 §3.1: a request without a token).
	Code        string
	Description string
	// Scope is the scope the API requires, space-separated, when Code is
	// insufficient_scope.
	Scope string
	// Algs are the DPoP proof algorithms the API accepts.
	Algs []string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("client: API answered HTTP %d", e.StatusCode)
	if e.Code != "" {
		s += ": " + printable(e.Code)
	}
	if e.Description != "" {
		s += ": " + printable(e.Description)
	}
	if e.Scope != "" {
		s += " (scope " + printable(e.Scope) + ")"
	}
	return s
}

// ResponseError returns an *APIError if resp is an API's refusal of the
// call's credentials (401 or 403), and nil for any other status, which is
// the API's own business. It reads only the headers: the body is left to
// the caller, who still closes it.
//
//	resp, err := api.Get(u)
//	...
//	defer resp.Body.Close()
//	if err := client.ResponseError(resp); err != nil {
//		return err // errors.As(err, &apiErr) gives Code, Scope, ...
//	}
func ResponseError(resp *http.Response) error {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return nil
	}
	e := &APIError{StatusCode: resp.StatusCode}
	if ch, ok := pickChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		e.Scheme = ch.scheme
		e.Code = ch.params["error"]
		e.Description = ch.params["error_description"]
		e.Scope = ch.params["scope"]
		if algs := strings.Fields(ch.params["algs"]); len(algs) > 0 {
			e.Algs = algs
		}
	}
	return e
}

// challenge is one challenge of a WWW-Authenticate header (RFC 9110 §11.6.1).
type challenge struct {
	scheme string
	params map[string]string // names in lower case
}

// Bounds on what is parsed from WWW-Authenticate: a real one has a
// challenge or two with a handful of parameters.
const (
	maxChallengeHeader = 8 << 10
	maxChallenges      = 8
)

// pickChallenge returns the challenge to report: the first DPoP or Bearer
// challenge that names an error, or else the first DPoP or Bearer one.
func pickChallenge(headers []string) (challenge, bool) {
	var first challenge
	found := false
	for _, ch := range parseChallenges(headers) {
		if !strings.EqualFold(ch.scheme, "DPoP") && !strings.EqualFold(ch.scheme, "Bearer") {
			continue
		}
		if ch.params["error"] != "" {
			return ch, true
		}
		if !found {
			first, found = ch, true
		}
	}
	return first, found
}

// parseChallenges reads the challenges of WWW-Authenticate header values:
//
//	challenge = scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// Challenges and parameters are separated by commas, so a token that is
// not followed by "=" starts the next challenge. Malformed input ends the
// parse with what was read so far; it never fails.
func parseChallenges(headers []string) []challenge {
	var out []challenge
	for _, h := range headers {
		if len(h) > maxChallengeHeader {
			continue
		}
		p := &challengeParser{s: h}
		for len(out) < maxChallenges {
			p.skip(" \t,")
			scheme := p.token()
			if scheme == "" {
				break
			}
			ch := challenge{scheme: scheme, params: map[string]string{}}
			for {
				p.skip(" \t")
				mark := p.i
				name := p.token()
				if name == "" {
					break
				}
				p.skip(" \t")
				if !p.consume('=') {
					p.i = mark // the next challenge's scheme
					break
				}
				p.skip(" \t")
				var value string
				if p.peek() == '"' {
					value = p.quoted()
				} else {
					value = p.token()
					p.skip("=") // the padding of a token68
				}
				ch.params[strings.ToLower(name)] = value
				p.skip(" \t")
				if !p.consume(',') {
					break
				}
			}
			out = append(out, ch)
			if p.i >= len(p.s) {
				break
			}
			if c := p.peek(); c != ',' && c != ' ' && c != '\t' && !isTokenChar(c) {
				break // malformed: stop here
			}
		}
	}
	return out
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *challengeParser) consume(c byte) bool {
	if p.peek() == c && p.i < len(p.s) {
		p.i++
		return true
	}
	return false
}

func (p *challengeParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string and returns its content without escapes.
// An unterminated one runs to the end.
func (p *challengeParser) quoted() string {
	p.i++ // the opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String()
		case c == '\\' && p.i < len(p.s):
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isTokenChar reports whether c is a tchar of RFC 9110 §5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
