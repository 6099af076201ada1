package token

import (
	"context"
	"slices"

	"github.com/tillit-sts/tillit/internal/oauth"
)

// clientCredentials is the machine-to-machine grant (RFC 6749 §4.4, profile
// §4.2). The token is for exactly one API: the one named by resource, or the
// one the requested scopes belong to, or the only one the client has scopes
// for when the request names neither scope nor resource.
type clientCredentials struct{}

func (g clientCredentials) issue(_ context.Context, t *tokenRequest) (*issue, error) {
	if len(t.Resources) > 1 {
		return nil, oauth.InvalidTarget("name one resource: a token is for one API")
	}
	requested := splitScopes(t.Scope)
	for _, s := range requested {
		if identityScope(s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s needs a user login and is not allowed in client_credentials", s)
		}
		if !slices.Contains(t.Client.Scopes, s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s is not allowed for this client", s)
		}
	}
	org, err := selectOrganization(t.Snapshot, t.Client, t.Assertion, nil)
	if err != nil {
		return nil, err
	}
	choice, err := chooseAPI(t, org, requested, t.Client.Scopes, severalRequested, severalClientScopes)
	if err != nil {
		return nil, err
	}
	return &issue{API: choice.api, Scopes: choice.scopes, RejectedScopes: choice.rejected, Claims: clientClaims(t, choice.api, org)}, nil
}
