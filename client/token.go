package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
)

// Wire values of the token endpoint (RFC 6749 §4.4, RFC 9449 §8).
const (
	grantTypeClientCredentials = "client_credentials"
	codeUseDPoPNonce           = "use_dpop_nonce"
	headerDPoP                 = "DPoP"
	headerDPoPNonce            = "DPoP-Nonce"
)

// maxLifetimeSeconds bounds expires_in and rt_expires_in. Nothing real comes
// near it, and it keeps Expiry from overflowing time.Duration.
const maxLifetimeSeconds = 10 * 365 * 24 * 3600

// TokenRequest is a client_credentials token request. Empty fields take
// the Client's defaults (Config.Scopes, Resource and Organization).
type TokenRequest struct {
	// Scopes are sent space-separated. None (here and in Config) means
	// every scope the client may have, if the STS can tell which API is
	// meant.
	Scopes []string
	// Resource is the RFC 8707 resource indicator: the audience of the API
	// the token is for, e.g. "nhn:deft".
	Resource string
	// Organization is the organisation to act for, written into
	// assertion_details as Config.Tenancy says.
	Organization Organization
	// SFMJournalID is the patient journal (a UUID) a request to
	// Sentral forskrivningsmodul concerns; it goes into assertion_details
	// as an nhn:sfm:journal-id entry.
	SFMJournalID string
	// AssertionDetails are further entries for the client assertion's
	// assertion_details, after those for Organization and SFMJournalID
	// (see the helseid builders; helseid.RawDetail for Tillitsrammeverk).
	AssertionDetails []helseid.Detail
	// Bearer asks for a Bearer token: no DPoP proof is sent. Only APIs that
	// allow Bearer accept such tokens.
	Bearer bool
}

// TokenResponse is a successful token response (RFC 6749 §5.1) with
// HelseID's additions.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	// TokenType is "DPoP" for a DPoP-bound token and "Bearer" otherwise
	// (compare without case, RFC 6749 §5.1). A server that does not support
	// DPoP answers a DPoP request with "Bearer" (RFC 9449 §5).
	TokenType string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds; 0 if not sent.
	ExpiresIn int64 `json:"expires_in,omitempty"`
	// Scope is the space-separated scope granted.
	Scope string `json:"scope,omitempty"`
	// RejectedScope lists, space-separated, the scopes HelseID dropped
	// because the organisation a multi-tenant client acts for has not
	// signed the terms of use that the API requires.
	RejectedScope string `json:"rejected_scope,omitempty"`
	RefreshToken  string `json:"refresh_token,omitempty"`
	// RefreshTokenExpiresIn is HelseID's rt_expires_in: seconds until the
	// refresh token expires.
	RefreshTokenExpiresIn int64  `json:"rt_expires_in,omitempty"`
	IssuedTokenType       string `json:"issued_token_type,omitempty"`
	// IDToken is the OpenID Connect ID token of a login's first token
	// response. Exchange verifies it; elsewhere it is as the server sent it.
	IDToken string `json:"id_token,omitempty"`

	// Expiry is when the access token expires by the local clock: the time
	// the request was sent plus ExpiresIn, so never later than the server
	// meant. Zero when ExpiresIn is.
	Expiry time.Time `json:"-"`
	// Raw is the whole response body.
	Raw json.RawMessage `json:"-"`
}

// Token gets an access token with the client_credentials grant. It sends a
// new client assertion and, unless r.Bearer, a DPoP proof for the token
// endpoint. If the endpoint answers 400 use_dpop_nonce with a DPoP-Nonce
// header, as HelseID does to a proof without a nonce (profile §3.3), the
// request is built again with a new assertion and a new proof carrying that
// nonce, and sent once more. The last nonce is remembered and used up front
// next time, so usually only the first request makes the round trip.
//
// Errors from the token endpoint are *Error.
func (c *Client) Token(ctx context.Context, r TokenRequest) (*TokenResponse, error) {
	p, err := c.prepare(r)
	if err != nil {
		return nil, err
	}
	return c.fetch(ctx, p)
}

// prepared is a TokenRequest or an ExchangeRequest with the defaults
// applied, checked and rendered: what goes on the wire, and the cache key
// that stands for it.
type prepared struct {
	form     url.Values
	details  []helseid.Detail
	bearer   bool
	exchange bool
	key      sourceKey
}

// fetch makes the token request p.
func (c *Client) fetch(ctx context.Context, p *prepared) (*TokenResponse, error) {
	t, err := c.token(ctx, p.form, p.details, p.bearer)
	if err != nil {
		return nil, err
	}
	// RFC 8693 §2.2.1: the server says what it issued. Anything but an
	// access token is not what was asked for.
	if p.exchange && t.IssuedTokenType != "" && t.IssuedTokenType != tokenTypeAccessToken {
		return nil, fmt.Errorf("client: exchange: the server issued a %q, not an access token", t.IssuedTokenType)
	}
	return t, nil
}

// sourceKey tells token requests apart for the cache: two requests with
// the same key would get interchangeable tokens.
type sourceKey struct {
	scope, resource string
	org             Organization
	journalID       string
	extra           string // the further assertion_details, as JSON
	bearer          bool
	// subject is the SHA-256 of an exchange's subject token; zero for
	// client_credentials. The hash keeps the token itself out of the
	// cache, which outlives the requests that brought it.
	subject [32]byte
}

func (c *Client) prepare(r TokenRequest) (*prepared, error) {
	g := c.withDefaults(grant{
		scopes:     r.Scopes,
		resource:   r.Resource,
		org:        r.Organization,
		journalID:  r.SFMJournalID,
		details:    r.AssertionDetails,
		requireOrg: true,
	})
	p := &prepared{form: url.Values{"grant_type": {grantTypeClientCredentials}}, bearer: r.Bearer}
	var err error
	if p.details, err = c.render(p.form, g); err != nil {
		return nil, err
	}

	if p.key, err = cacheKey(g, r.AssertionDetails, r.Bearer); err != nil {
		return nil, err
	}
	return p, nil
}

// cacheKey is the sourceKey of the request g with the further assertion
// details extra.
func cacheKey(g grant, extra []helseid.Detail, bearer bool) (sourceKey, error) {
	// The key holds the scopes in order of name, so that the same set
	// asked for in another order shares a token.
	sorted := slices.Clone(g.scopes)
	slices.Sort(sorted)
	k := sourceKey{scope: strings.Join(sorted, " "), resource: g.resource, org: g.org, journalID: g.journalID, bearer: bearer}
	if len(extra) > 0 {
		b, err := helseid.MarshalDetails(extra)
		if err != nil {
			return sourceKey{}, fmt.Errorf("client: assertion details: %w", err)
		}
		k.extra = string(b)
	}
	return k, nil
}

// grant is what the token requests of every grant share besides the grant
// itself: scope, resource, and the entries of assertion_details.
type grant struct {
	scopes    []string
	resource  string
	org       Organization
	journalID string           // an SFM journal id, if any
	details   []helseid.Detail // further entries, after org and journalID
	// requireOrg makes a multi-tenant client name the organisation it acts
	// for. A refresh need not: the login's organisation stays.
	requireOrg bool
}

// withDefaults fills the empty scopes, resource and organisation of g with
// the Client's defaults. A refresh does not use them: the login decided
// what its refresh token may get.
func (c *Client) withDefaults(g grant) grant {
	if len(g.scopes) == 0 {
		g.scopes = c.scopes
	}
	if g.resource == "" {
		g.resource = c.resource
	}
	if orgIsZero(g.org) {
		g.org = c.org
	}
	return g
}

// render checks g, sets its scope and resource in form and returns the
// client assertion's assertion_details: the organisation, the SFM journal
// id, then the further entries.
func (c *Client) render(form url.Values, g grant) ([]helseid.Detail, error) {
	if err := checkScopes(g.scopes); err != nil {
		return nil, err
	}
	if len(g.scopes) > 0 {
		form.Set("scope", strings.Join(g.scopes, " "))
	}
	if g.resource != "" {
		form.Set("resource", g.resource)
	}
	var details []helseid.Detail
	d, err := orgDetail(g.org, c.tenancy)
	if err != nil {
		return nil, err
	}
	named := d != nil
	if named {
		details = append(details, d)
	}
	if g.journalID != "" {
		j, err := helseid.NewSFMJournalID(g.journalID)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		details = append(details, j)
	}
	for _, e := range g.details {
		if e == nil {
			return nil, errors.New("client: nil assertion detail")
		}
		if e.DetailType() == helseid.DetailTypeAuthorization {
			if named {
				return nil, errors.New("client: the request names two organisations")
			}
			named = true
		}
	}
	if g.requireOrg && c.tenancy == MultiTenant && !named {
		return nil, errors.New("client: a multi-tenant client must name the organisation it acts for")
	}
	return append(details, g.details...), nil
}

func checkScopes(scopes []string) error {
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("client: scope %q is empty or has white space", s)
		}
	}
	return nil
}

// token posts form to the token endpoint with a client assertion carrying
// details and, unless bearer, a DPoP proof, and does the nonce round trip.
// Every grant comes through here.
func (c *Client) token(ctx context.Context, form url.Values, details []helseid.Detail, bearer bool) (*TokenResponse, error) {
	md, err := c.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	nonce := c.lastNonce()
	for attempt := 1; ; attempt++ {
		sent := c.now()
		req, err := c.newTokenRequest(ctx, md.TokenEndpoint, form, details, bearer, nonce)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			// The endpoint may have moved: read the discovery document
			// again next time rather than for a day to come.
			c.forgetMetadata(md)
			return nil, unreachable(ctx, "token request", err)
		}
		tok, fresh, err := readTokenResponse(resp, sent)
		if fresh != "" {
			// RFC 9449 §8.2: a server may hand out a new nonce in any
			// response, successful or not.
			c.setNonce(fresh)
		}
		if err == nil {
			return tok, nil
		}
		var oe *Error
		if errors.As(err, &oe) && oe.Code == "" {
			c.forgetMetadata(md) // not an OAuth answer: maybe not the endpoint either
		}
		if attempt == 1 && !bearer && fresh != "" && errors.As(err, &oe) &&
			oe.Code == codeUseDPoPNonce && oe.StatusCode == http.StatusBadRequest {
			nonce = fresh
			continue
		}
		return nil, err
	}
}

// newTokenRequest builds one attempt: every attempt needs a new assertion
// and a new proof, because the server spends their jtis.
func (c *Client) newTokenRequest(ctx context.Context, endpoint string, form url.Values, details []helseid.Detail, bearer bool, nonce string) (*http.Request, error) {
	assertion, err := c.ClientAssertion(details...)
	if err != nil {
		return nil, err
	}
	body := url.Values{}
	for k, v := range form {
		body[k] = v
	}
	body.Set("client_id", c.clientID)
	body.Set("client_assertion_type", clientAssertionTypeJWTBearer)
	body.Set("client_assertion", assertion)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body.Encode()))
	if err != nil {
		return nil, fmt.Errorf("client: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !bearer {
		proof, err := c.dpop.Proof(http.MethodPost, endpoint, dpop.ProofOptions{Nonce: nonce, Now: c.now()})
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		req.Header.Set(headerDPoP, proof)
	}
	return req, nil
}

// readTokenResponse reads and closes resp. It returns the DPoP-Nonce header
// in every case, so the caller can remember it even from an error.
func readTokenResponse(resp *http.Response, sent time.Time) (*TokenResponse, string, error) {
	defer resp.Body.Close()
	nonce := resp.Header.Get(headerDPoPNonce)
	body, err := readBody(resp.Body, maxTokenResponseSize)
	if err != nil {
		return nil, nonce, fmt.Errorf("client: token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nonce, newError(resp.StatusCode, body)
	}
	var t TokenResponse
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, nonce, fmt.Errorf("client: token response is not valid JSON: %w", err)
	}
	switch {
	case t.AccessToken == "":
		return nil, nonce, errors.New("client: token response has no access_token")
	case t.TokenType == "":
		return nil, nonce, errors.New("client: token response has no token_type")
	case t.ExpiresIn < 0 || t.RefreshTokenExpiresIn < 0:
		return nil, nonce, errors.New("client: token response has a negative lifetime")
	case t.ExpiresIn > maxLifetimeSeconds || t.RefreshTokenExpiresIn > maxLifetimeSeconds:
		return nil, nonce, errors.New("client: token response has a lifetime of more than ten years")
	}
	if t.ExpiresIn > 0 {
		t.Expiry = sent.Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	t.Raw = body
	return &t, nonce, nil
}

func (c *Client) lastNonce() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonce
}

func (c *Client) setNonce(n string) {
	c.mu.Lock()
	c.nonce = n
	c.mu.Unlock()
}
