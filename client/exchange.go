package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
)

// Wire values of token exchange (RFC 8693 §2.1, §3).
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// ExchangeRequest is a token exchange (RFC 8693) as an API's own client
// makes it (profile §4.6): the API received SubjectToken from a client and
// needs a token for a downstream API that still says who that client is.
// SFM exchanges an EPJ's token this way to call Reseptformidleren.
//
// The exchanging client must own the subject token's API and have the
// token-exchange grant, and the subject's client must allow it. Empty
// Scopes and Resource take the Client's defaults, as in TokenRequest.
type ExchangeRequest struct {
	// SubjectToken is the access token the API received, without the
	// "DPoP " or "Bearer " of the Authorization header, as
	// resource.AccessTokenFromContext gives it. It may be bound to the
	// calling client's DPoP key: the exchange does not need that key.
	SubjectToken string
	// Scopes are the downstream API's scopes, sent space-separated.
	Scopes []string
	// Resource names the downstream API (RFC 8707); optional when Scopes
	// name it.
	Resource string
	// Organization is the organisation the exchanging client acts for; the
	// new token names it in its act claim. A multi-tenant client must name
	// one.
	Organization Organization
	// AssertionDetails are further entries for the client assertion's
	// assertion_details.
	AssertionDetails []helseid.Detail
	// Bearer asks for a Bearer token, for a downstream API that allows it.
	Bearer bool
}

// Exchange swaps r.SubjectToken for an access token to a downstream API,
// bound to this Client's DPoP key. It does the use_dpop_nonce round trip as
// Token does. The new token lives no longer than the subject token, and is
// not cached: ExchangeTokenSource caches it.
//
// Errors from the token endpoint are *Error; HelseID's texts for a refused
// exchange include "not permitted" and "subject_token exchanged too many
// times (3)".
func (c *Client) Exchange(ctx context.Context, r ExchangeRequest) (*TokenResponse, error) {
	p, err := c.prepareExchange(r)
	if err != nil {
		return nil, err
	}
	return c.fetch(ctx, p)
}

func (c *Client) prepareExchange(r ExchangeRequest) (*prepared, error) {
	if r.SubjectToken == "" {
		return nil, errors.New("client: exchange: the subject token is empty")
	}
	if strings.ContainsAny(r.SubjectToken, " \t\r\n") {
		return nil, errors.New("client: exchange: the subject token has white space; pass the token without its scheme")
	}
	p := &prepared{
		form: url.Values{
			"grant_type":         {grantTypeTokenExchange},
			"subject_token":      {r.SubjectToken},
			"subject_token_type": {tokenTypeAccessToken},
		},
		bearer:   r.Bearer,
		exchange: true,
	}
	g := c.withDefaults(grant{
		scopes:     r.Scopes,
		resource:   r.Resource,
		org:        r.Organization,
		details:    r.AssertionDetails,
		requireOrg: true,
	})
	var err error
	if p.details, err = c.render(p.form, g); err != nil {
		return nil, err
	}
	p.key, err = cacheKey(g, r.AssertionDetails, r.Bearer)
	if err != nil {
		return nil, err
	}
	p.key.subject = sha256.Sum256([]byte(r.SubjectToken))
	return p, nil
}
