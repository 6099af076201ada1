package token

import (
	"slices"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// This file decides what every grant decides the same way: which one API a
// token is for (RFC 8707 resource, or the API its scopes belong to) and
// which scopes it carries.

// splitScopes splits the scope parameter (RFC 6749 §3.3) and drops
// duplicates, keeping the order.
func splitScopes(s string) []string {
	fields := strings.Fields(s)
	out := fields[:0]
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// IdentityScopes are the scopes about the logged-in person that logins
// grant (profile §5.6), for discovery.
var IdentityScopes = []string{
	helseid.ScopeOpenID, helseid.ScopeProfile, helseid.ScopeOfflineAccess,
	helseid.ScopeIdentityAll, helseid.ScopePID, helseid.ScopePIDPseudonym, helseid.ScopeSecurityLevel,
	helseid.ScopeAssuranceLevel, helseid.ScopeNetwork, helseid.ScopeHPRNumber, helseid.ScopeHPRLegacy,
}

// identityScope reports scopes that only make sense with a logged-in user.
func identityScope(s string) bool {
	switch s {
	case "openid", "profile", "offline_access", "helseid://scopes/hpr":
		return true
	}
	return strings.HasPrefix(s, "helseid://scopes/identity/") || strings.HasPrefix(s, "helseid://scopes/hpr/")
}

// The invalid_target descriptions for scopes of several APIs.
const (
	severalRequested    = "the scopes belong to several APIs: a token is for one API; ask for one at a time"
	severalClientScopes = "the client has scopes for several APIs: name one API with resource= or scope="
)

// apiChoice is the one API a token is for, the scopes of it that the token
// carries, and the scopes dropped because the organisation has not accepted
// their API's terms of use.
type apiChoice struct {
	api      *store.API
	scopes   []string
	rejected []string
}

// chooseAPI picks the API of a token and its scopes. requested are the API
// scopes the request names (already checked against what the client may
// have); when there are none, available are the scopes to take them from:
// the resource's share of them, or all of them if they name one API. The
// two descriptions are the invalid_target answers when requested, or
// available, span several APIs.
func chooseAPI(t *tokenRequest, org organization, requested, available []string, severalReq, severalAvail string) (apiChoice, error) {
	snap := t.Snapshot
	var c apiChoice
	if len(requested) > 0 {
		kept, rejected := org.accepted(snap, requested)
		if len(kept) == 0 {
			return c, org.termsNotAccepted(snap, rejected)
		}
		api, err := target(snap, t.Resources, kept, severalReq)
		if err != nil {
			return c, err
		}
		c = apiChoice{api: api, scopes: kept, rejected: rejected}
	} else {
		var api *store.API
		if len(t.Resources) == 1 {
			a, err := target(snap, t.Resources, nil, severalReq)
			if err != nil {
				return c, err
			}
			api, available = a, scopesOf(a, available)
			if len(available) == 0 {
				// RFC 8707 §2: a resource the client is not permitted
				// a token for is a target error.
				return c, oauth.Newf(oauth.CodeInvalidTarget, "the client has no scopes for %s", a.Audience)
			}
		}
		kept, rejected := org.accepted(snap, available)
		if len(kept) == 0 {
			if len(rejected) == 0 {
				return c, oauth.InvalidScope("the client has no scopes for any API")
			}
			return c, org.termsNotAccepted(snap, rejected)
		}
		if api == nil {
			// Neither scope nor resource: what is left must name one API.
			for _, s := range kept {
				a, ok := snap.APIForScope(s)
				if !ok {
					continue
				}
				if api != nil && a.Audience != api.Audience {
					return c, oauth.InvalidTarget(severalAvail)
				}
				api = a
			}
			if api == nil || api.Status == store.StatusDisabled {
				return c, oauth.InvalidScope("the client has no scopes for any API")
			}
		}
		c = apiChoice{api: api, scopes: scopesOf(api, kept), rejected: rejected}
	}
	if sys := t.Client.System; sys != nil && len(sys.APIs) > 0 && !slices.Contains(sys.APIs, c.api.Audience) {
		return c, oauth.Newf(oauth.CodeInvalidTarget, "the client system is not set up for %s", c.api.Audience)
	}
	return c, nil
}

// scopesOf keeps the scopes of list that belong to api, in list's order.
func scopesOf(api *store.API, list []string) []string {
	var out []string
	for _, s := range list {
		if slices.Contains(api.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// target picks the one API that resources and requested name.
func target(snap *registry.Snapshot, resources, requested []string, several string) (*store.API, error) {
	var api *store.API
	if len(resources) == 1 {
		a, ok := snap.API(resources[0])
		if !ok || a.Status == store.StatusDisabled {
			return nil, oauth.Newf(oauth.CodeInvalidTarget, "resource %s is not a known API", resources[0])
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
		case a.Audience != api.Audience && len(resources) == 1:
			return nil, oauth.Newf(oauth.CodeInvalidTarget, "scope %s is not a scope of resource %s", s, api.Audience)
		case a.Audience != api.Audience:
			return nil, oauth.InvalidTarget(several)
		}
	}
	switch {
	case api == nil:
		return nil, oauth.InvalidScope("the client has no scopes for any API")
	case api.Status == store.StatusDisabled:
		return nil, oauth.Newf(oauth.CodeInvalidTarget, "%s is disabled", api.Audience)
	}
	return api, nil
}
