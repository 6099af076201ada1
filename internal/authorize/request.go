package authorize

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// Request is a validated authorization request: what the login pages need
// and what the code will carry. It is what the PAR endpoint stores and the
// authorization endpoint hands to Login; Marshal and Endpoint.Resume carry
// it across the pages.
type Request struct {
	ClientID    string   `json:"client_id"`
	RedirectURI string   `json:"redirect_uri"`
	Scopes      []string `json:"scope"`
	Resources   []string `json:"resource,omitempty"`
	State       string   `json:"state,omitempty"`
	Nonce       string   `json:"nonce,omitempty"`
	// CodeChallenge is the PKCE S256 challenge (RFC 7636).
	CodeChallenge string `json:"code_challenge"`
	// ACRValues are the acr_values as sent; IdP and SecurityLevel what
	// Tillit reads from them: idp:<name> names the identity provider,
	// Level4 or High asks for security level 4.
	ACRValues     []string `json:"acr_values,omitempty"`
	IdP           string   `json:"idp,omitempty"`
	SecurityLevel string   `json:"security_level,omitempty"`
	// Prompt is "", "login" (log in again even with a session) or "none"
	// (never show a page).
	Prompt    string `json:"prompt,omitempty"`
	LoginHint string `json:"login_hint,omitempty"`
	UILocales string `json:"ui_locales,omitempty"`
	// MaxAge is max_age in seconds; nil when not sent.
	MaxAge *int64 `json:"max_age,omitempty"`
	// JKT is the thumbprint of the DPoP key the code is bound to (RFC 9449
	// §10): dpop_jkt, or the key of the PAR request's proof.
	JKT string `json:"dpop_jkt,omitempty"`
	// Test holds TestIDP's parameters, accepted only in a test
	// environment.
	Test TestParams `json:"test,omitzero"`
	// Pushed says the request came through PAR.
	Pushed bool `json:"pushed,omitempty"`

	// Client is the registered client, as of the registry snapshot the
	// request was validated (or resumed) against.
	Client *registry.Client `json:"-"`
}

// TestParams are TestIDP's automation parameters (test_pid,
// test_security_level, test_hpr_number): with acr_values=idp:<TestIDP>
// they log the person in without a page.
type TestParams struct {
	PID           string `json:"pid,omitempty"`
	SecurityLevel string `json:"security_level,omitempty"`
	HPRNumber     string `json:"hpr_number,omitempty"`
}

// Marshal encodes the request for the pages to keep while the person logs
// in (in the store's login state, never in the browser in clear).
func (r *Request) Marshal() ([]byte, error) { return json.Marshal(r) }

// Bounds of the parameters: enough for every real client, small enough
// that a request cannot grow the store or the pages.
const (
	maxParam     = 512
	maxScopes    = 50
	maxResources = 10
	maxParams    = 40
)

// requestError is a refused authorization request. Before the redirect
// URI is known to be the client's (redirectable false) it is shown on an
// error page and never sent anywhere.
type requestError struct {
	code, description string
	redirectable      bool
}

func (e *requestError) Error() string { return e.code + ": " + e.description }

func pageError(code, format string, args ...any) *requestError {
	return &requestError{code: code, description: fmt.Sprintf(format, args...)}
}

func redirectError(code, format string, args ...any) *requestError {
	return &requestError{code: code, description: fmt.Sprintf(format, args...), redirectable: true}
}

// params are the parameters of one request, each at most once, apart from
// resource.
type params struct {
	one       map[string]string
	resources []string
}

// readParams takes the parameters of a form or query: a parameter given
// twice is refused (RFC 6749 §3.1), except resource (RFC 8707 §2).
func readParams(v url.Values) (params, *requestError) {
	p := params{one: make(map[string]string, len(v))}
	if len(v) > maxParams {
		return p, pageError(oauth.CodeInvalidRequest, "too many parameters")
	}
	for name, values := range v {
		if name == "resource" {
			p.resources = values
			continue
		}
		if len(values) > 1 {
			return p, pageError(oauth.CodeInvalidRequest, "parameter %s is given more than once", name)
		}
		p.one[name] = values[0]
	}
	return p, nil
}

func (p params) has(name string) bool { _, ok := p.one[name]; return ok }

// validate checks a request of client against the registry (RFC 6749
// §4.1.1, RFC 7636, RFC 9126, profile §4.3). The client and redirect URI
// come first: until both are known good, an error is not redirectable.
func validate(snap *registry.Snapshot, c *registry.Client, p params, test bool) (*Request, *requestError) {
	req := &Request{ClientID: c.ID, Client: c}
	redirect := p.one["redirect_uri"]
	switch {
	case redirect == "":
		return nil, pageError(oauth.CodeInvalidRequest, "redirect_uri is missing")
	case !oauth.MatchRedirectURI(c.RedirectURIs, redirect, c.AllowLoopbackAnyPort && test):
		return nil, pageError(oauth.CodeInvalidRequest, "redirect_uri is not registered for this client")
	}
	req.RedirectURI = redirect
	// From here on the client gets the error at its redirect URI.
	req.State = p.one["state"]
	if len(req.State) > maxParam {
		req.State = ""
		return req, redirectError(oauth.CodeInvalidRequest, "state is longer than %d characters", maxParam)
	}
	for _, name := range authzParams {
		if len(p.one[name]) > maxParam {
			return req, redirectError(oauth.CodeInvalidRequest, "%s is longer than %d characters", name, maxParam)
		}
	}
	switch rt := p.one["response_type"]; rt {
	case "code":
	case "":
		return req, redirectError(CodeUnsupportedResponseType, "response_type is missing: it must be code")
	default:
		return req, redirectError(CodeUnsupportedResponseType, "response_type must be code")
	}
	if m := p.one["response_mode"]; m != "" && m != "query" {
		return req, redirectError(oauth.CodeInvalidRequest, "response_mode must be query")
	}

	// PKCE, S256 only (RFC 9700 §2.1.1).
	switch p.one["code_challenge_method"] {
	case "S256":
	case "":
		if p.has("code_challenge") {
			return req, redirectError(oauth.CodeInvalidRequest, "code_challenge_method is missing: it must be S256")
		}
		return req, redirectError(oauth.CodeInvalidRequest, "code_challenge is missing: PKCE with S256 is required")
	default:
		return req, redirectError(oauth.CodeInvalidRequest, "code_challenge_method must be S256")
	}
	req.CodeChallenge = p.one["code_challenge"]
	if !challengeRE(req.CodeChallenge) {
		return req, redirectError(oauth.CodeInvalidRequest, "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
	}

	// Scopes: the client's identity scopes and API scopes; openid is
	// required, since a login is OpenID Connect.
	scopes := strings.Fields(p.one["scope"])
	if len(scopes) == 0 {
		return req, redirectError(oauth.CodeInvalidScope, "scope is missing")
	}
	if len(scopes) > maxScopes {
		return req, redirectError(oauth.CodeInvalidScope, "too many scopes")
	}
	var apis []string
	for _, s := range scopes {
		if slices.Contains(req.Scopes, s) {
			continue
		}
		switch {
		case slices.Contains(c.IdentityScopes, s):
		case slices.Contains(c.Scopes, s):
			api, ok := snap.APIForScope(s)
			if !ok || api.Status == store.StatusDisabled {
				return req, redirectError(oauth.CodeInvalidScope, "scope %s belongs to no API that is enabled", s)
			}
			if !slices.Contains(apis, api.Audience) {
				apis = append(apis, api.Audience)
			}
		default:
			return req, redirectError(oauth.CodeInvalidScope, "scope %s is not allowed for this client", s)
		}
		req.Scopes = append(req.Scopes, s)
	}
	if !slices.Contains(req.Scopes, "openid") {
		return req, redirectError(oauth.CodeInvalidScope, "scope must include openid")
	}
	if len(apis) == 0 {
		return req, redirectError(oauth.CodeInvalidScope, "scope names no API: name the scopes of at least one API the login is for")
	}

	// Resources (RFC 8707): APIs whose scopes the request asks for.
	if len(p.resources) > maxResources {
		return req, redirectError(oauth.CodeInvalidTarget, "too many resources")
	}
	for _, r := range p.resources {
		switch {
		case len(r) > maxParam:
			return req, redirectError(oauth.CodeInvalidTarget, "resource is longer than %d characters", maxParam)
		case !slices.Contains(apis, r):
			return req, redirectError(oauth.CodeInvalidTarget, "resource %s is not the API of a scope the request asks for", r)
		case slices.Contains(req.Resources, r):
			continue
		}
		req.Resources = append(req.Resources, r)
	}

	req.Nonce = p.one["nonce"]
	req.LoginHint = p.one["login_hint"]
	req.UILocales = p.one["ui_locales"]
	if v, ok := p.one["max_age"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return req, redirectError(oauth.CodeInvalidRequest, "max_age must be a number of seconds")
		}
		req.MaxAge = &n
	}
	switch pr := p.one["prompt"]; pr {
	case "", "login", "none":
		req.Prompt = pr
	default:
		return req, redirectError(oauth.CodeInvalidRequest, "prompt must be login or none")
	}
	if err := req.readACR(snap, p.one["acr_values"]); err != nil {
		return req, err
	}
	if jkt, ok := p.one["dpop_jkt"]; ok {
		if !thumbprintRE(jkt) {
			return req, redirectError(oauth.CodeInvalidRequest, "dpop_jkt must be the base64url SHA-256 JWK thumbprint of a key (RFC 9449 §10)")
		}
		req.JKT = jkt
	}
	for _, name := range []string{"test_pid", "test_security_level", "test_hpr_number"} {
		if p.has(name) && !test {
			return req, redirectError(oauth.CodeInvalidRequest, "%s is accepted only in a test environment", name)
		}
	}
	req.Test = TestParams{PID: p.one["test_pid"], SecurityLevel: p.one["test_security_level"], HPRNumber: p.one["test_hpr_number"]}
	return req, nil
}

// readACR reads acr_values (profile §7): Level4 or High ask for security
// level 4; idp:<name> names an enabled identity provider. Other values are
// kept for an upstream provider.
func (req *Request) readACR(snap *registry.Snapshot, s string) *requestError {
	for _, v := range strings.Fields(s) {
		switch {
		case v == "Level4" || v == "High":
			req.SecurityLevel = "4"
		case strings.HasPrefix(v, "idp:"):
			name := strings.TrimPrefix(v, "idp:")
			idp, ok := snap.IdentityProvider(name)
			if !ok || idp.Status != store.StatusActive {
				return redirectError(oauth.CodeInvalidRequest, "acr_values names identity provider %q, which is not offered", name)
			}
			if req.IdP != "" && req.IdP != name {
				return redirectError(oauth.CodeInvalidRequest, "acr_values names two identity providers")
			}
			req.IdP = name
		}
		if len(req.ACRValues) < 10 {
			req.ACRValues = append(req.ACRValues, v)
		}
	}
	return nil
}

// challengeRE: 43 base64url characters, a SHA-256.
func challengeRE(s string) bool { return base64url32(s) }

func thumbprintRE(s string) bool { return base64url32(s) }

func base64url32(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// CodeUnsupportedResponseType is RFC 6749 §4.1.2.1's error for a
// response_type other than code.
const CodeUnsupportedResponseType = "unsupported_response_type"

// The authorization endpoint's own error codes (RFC 6749 §4.1.2.1, OpenID
// Connect Core §3.1.2.6).
const (
	CodeLoginRequired = "login_required"
	CodeAccessDenied  = "access_denied"
)
