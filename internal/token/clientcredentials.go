package token

import (
	"context"
	"crypto/rsa"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/store"
)

// clientCredentials is the machine-to-machine grant (RFC 6749 §4.4, profile
// §4.2). The token is for exactly one API: the one named by resource, or the
// one the requested scopes belong to, or the only one the client has scopes
// for (decisions.md: client_credentials with neither scope nor resource).
type clientCredentials struct{ e *Endpoint }

func (g clientCredentials) issue(_ context.Context, t *tokenRequest) (*issue, error) {
	if len(t.Resources) > 1 {
		return nil, oauth.InvalidTarget("name one resource: a token is for one API")
	}
	requested := splitScopes(t.Scope)
	for _, s := range requested {
		if identityScope(s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s needs a user login and is not allowed in client_credentials", s)
		}
		if !contains(t.Client.Scopes, s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s is not allowed for this client", s)
		}
	}

	api, err := g.target(t, requested)
	if err != nil {
		return nil, err
	}
	if sys := t.Client.System; sys != nil && len(sys.APIs) > 0 && !contains(sys.APIs, api.Audience) {
		return nil, oauth.Newf(oauth.CodeInvalidTarget, "the client system is not set up for %s", api.Audience)
	}
	scopes := requested
	if len(scopes) == 0 {
		// Scope omitted: every scope the client has for this API.
		for _, s := range t.Client.Scopes {
			if contains(api.Scopes, s) {
				scopes = append(scopes, s)
			}
		}
		if len(scopes) == 0 {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "the client has no scopes for %s", api.Audience)
		}
	}

	org, err := selectOrganisation(t.Client, t.Assertion)
	if err != nil {
		return nil, err
	}
	is := &issue{API: api, Scopes: scopes}
	c := &is.Claims
	c.ClientID = t.Client.ID
	c.ClientAMR = helseid.ClientAMRPrivateKeyJWT
	c.HelseIDClientAMR = helseid.ClientAMRECKey
	if _, ok := t.Assertion.Key.Key.(*rsa.PublicKey); ok {
		c.HelseIDClientAMR = helseid.ClientAMRRSAKey
	}
	c.ClientName = t.Client.Name
	c.ClientTenancy = org.Tenancy
	c.OrgNrParent = org.Parent
	c.OrgNrChild = org.Child
	for _, want := range api.ClientClaims {
		switch want {
		case helseid.WantOrgNrSupplier:
			c.OrgNrSupplier = org.Supplier
		case helseid.WantSFMJournalID:
			c.SFMJournalID = org.JournalID
		default:
			name := helseid.APIClientClaim(api.Audience, want)
			if v, ok := t.Client.Claims[name]; ok {
				if c.APIClaims == nil {
					c.APIClaims = map[string]string{}
				}
				c.APIClaims[name] = v
			}
		}
	}
	return is, nil
}

// target picks the one API the token is for.
func (g clientCredentials) target(t *tokenRequest, requested []string) (*store.API, error) {
	snap := t.Snapshot
	var api *store.API
	if len(t.Resources) == 1 {
		a, ok := snap.API(t.Resources[0])
		if !ok || a.Status == store.StatusDisabled {
			return nil, oauth.Newf(oauth.CodeInvalidTarget, "resource %s is not a known API", t.Resources[0])
		}
		api = a
	}
	for _, s := range requested {
		a, ok := snap.APIForScope(s)
		if !ok {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s belongs to no API", s)
		}
		switch {
		case api == nil:
			api = a
		case a.Audience != api.Audience && len(t.Resources) == 1:
			return nil, oauth.Newf(oauth.CodeInvalidTarget, "scope %s is not a scope of resource %s", s, api.Audience)
		case a.Audience != api.Audience:
			return nil, oauth.InvalidTarget("the scopes belong to several APIs: a token is for one API; ask for one at a time")
		}
	}
	if api != nil {
		if api.Status == store.StatusDisabled {
			return nil, oauth.Newf(oauth.CodeInvalidTarget, "%s is disabled", api.Audience)
		}
		return api, nil
	}
	// Neither scope nor resource: the client's scopes must name one API.
	for _, s := range t.Client.Scopes {
		a, ok := snap.APIForScope(s)
		if !ok {
			continue
		}
		if api != nil && a.Audience != api.Audience {
			return nil, oauth.InvalidTarget("the client has scopes for several APIs: name one API with resource= or scope=")
		}
		api = a
	}
	if api == nil || api.Status == store.StatusDisabled {
		return nil, oauth.InvalidScope("the client has no scopes for any API")
	}
	return api, nil
}

// identityScope reports scopes that only make sense with a logged-in user.
func identityScope(s string) bool {
	switch s {
	case "openid", "profile", "offline_access":
		return true
	}
	return strings.HasPrefix(s, "helseid://scopes/identity/") || strings.HasPrefix(s, "helseid://scopes/hpr/")
}
