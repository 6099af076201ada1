package token

import (
	"slices"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// organisation is what a token says about the organisations behind a
// request (profile §6).
type organisation struct {
	Parent    string
	Child     string
	Supplier  string
	Tenancy   string
	JournalID string
}

// hid builds the invalid_request errors for organisation numbers. HelseID
// puts its HID code first in error_description (decisions.md).
func hid(code, format string, args ...any) *oauth.Error {
	return oauth.Newf(oauth.CodeInvalidRequest, code+": "+format, args...)
}

// selectOrganisation reads assertion_details (or authorization_details) and
// decides the organisation claims. A single-tenant client acts for its own
// organisation and may name one of its whitelisted children; a multi-tenant
// client must name the organisation it acts for, which needs the delegation
// registry (not in this release).
func selectOrganisation(c *registry.Client, a *clientauth.Assertion) (organisation, error) {
	org := organisation{Tenancy: string(c.Tenancy)}
	if c.System != nil {
		org.Supplier = c.System.Supplier
	}
	var auth *helseid.AuthorizationDetail
	if a.Details != nil {
		entries, err := helseid.ParseDetails(a.Details)
		if err != nil {
			return org, hid("HID-1007", "%s does not follow the specification", a.DetailsClaim).Wrap(err)
		}
		for _, e := range entries {
			switch d := e.(type) {
			case *helseid.AuthorizationDetail:
				if auth != nil {
					return org, hid("HID-1007", "%s has more than one %s entry", a.DetailsClaim, helseid.DetailTypeAuthorization)
				}
				auth = d
			case *helseid.JournalIDDetail:
				if org.JournalID != "" {
					return org, oauth.Newf(oauth.CodeInvalidRequest, "%s has more than one %s entry", a.DetailsClaim, helseid.DetailTypeSFMJournalID)
				}
				if !helseid.IsUUID(d.JournalID) {
					return org, oauth.Newf(oauth.CodeInvalidRequest, "%s journal_id must be a UUID", helseid.DetailTypeSFMJournalID)
				}
				org.JournalID = d.JournalID
			case *helseid.RawDetail:
				// Tillitsrammeverk parameters are accepted and not (yet)
				// turned into claims: the claim they become is not public.
				if d.Type != helseid.DetailTypeTillitsrammeverk {
					return org, hid("HID-1007", "%s entry type %q is not known", a.DetailsClaim, d.Type)
				}
			}
		}
	}
	if c.Tenancy == store.MultiTenant {
		// TODO(issue 4): delegation registry for multi-tenant clients.
		return org, oauth.InvalidRequest("multi-tenant clients are not supported yet: choosing the organisation a multi-tenant client acts for needs the delegation registry")
	}
	org.Parent = c.Organisation
	if auth == nil {
		return org, nil
	}
	parent, child, err := auth.OrgNumbers()
	if err != nil {
		return org, hid("HID-1007", "%s helseid_authorization does not follow the specification", a.DetailsClaim).Wrap(err)
	}
	if parent != "" {
		if !helseid.ValidOrgNumber(parent) {
			return org, hid("HID-1004", "organisation number %q is not nine digits with a valid check digit", parent)
		}
		if parent != c.Organisation {
			return org, hid("HID-1001", "parent organisation %s is not the organisation of this single-tenant client", parent)
		}
	}
	if child == "" {
		return org, nil
	}
	if !helseid.ValidOrgNumber(child) {
		return org, hid("HID-1004", "organisation number %q is not nine digits with a valid check digit", child)
	}
	if len(c.ChildOrganisations) == 0 {
		return org, hid("HID-1006", "this client is not set up to pass child organisation numbers")
	}
	if !slices.Contains(c.ChildOrganisations, child) {
		return org, hid("HID-1002", "child organisation %s is not on the client's list", child)
	}
	org.Child = child
	return org, nil
}
