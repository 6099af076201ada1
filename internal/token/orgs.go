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
type organization struct {
	Parent    string
	Child     string
	Supplier  string
	Tenancy   string
	JournalID string
	// Delegation is what lets a multi-tenant client act for Parent; nil
	// for a single-tenant client, whose organisation accepted every API's
	// terms when it got the client.
	Delegation *store.Delegation
}

// orgChoice is an organisation named earlier, at login, that a refresh
// uses when its assertion names none.
type orgChoice struct {
	Parent, Child string
}

// hid builds the invalid_request errors for organisation numbers. HelseID
// puts its HID code first in error_description.
func hid(code, format string, args ...any) *oauth.Error {
	return oauth.Newf(oauth.CodeInvalidRequest, code+": "+format, args...)
}

// multiTenantHowTo ends the errors of a multi-tenant client that did not
// name its organisation the way profile §6.2 says.
const multiTenantHowTo = "assertion_details with a helseid_authorization entry whose identifier has system " +
	helseid.SystemISO6523 + " and value NO:ORGNR:<parent> or NO:ORGNR:<parent>:<child>"

// selectOrganization reads assertion_details (or authorization_details) and
// decides the organisation claims. A single-tenant client acts for its own
// organisation and may name one of its whitelisted children. A
// multi-tenant client must name the organisation it acts for, which must
// have delegated to the client's supplier (profile §6.1). When the
// assertion names no organisation, earlier (the login a refresh token comes
// from) is used in its place; it is checked the same way, since the
// client's list or a delegation may have changed since.
func selectOrganization(snap *registry.Snapshot, c *registry.Client, a *clientauth.Assertion, earlier *orgChoice) (organization, error) {
	org := organization{Tenancy: string(c.Tenancy)}
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
	var choice *orgChoice
	if auth != nil {
		parent, child, err := auth.OrgNumbers()
		if err != nil {
			return org, hid("HID-1007", "%s helseid_authorization does not follow the specification", a.DetailsClaim).Wrap(err)
		}
		choice = &orgChoice{Parent: parent, Child: child}
	} else if earlier != nil && (earlier.Parent != "" || earlier.Child != "") {
		choice = earlier
	}
	if c.Tenancy == store.MultiTenant {
		return multiTenant(snap, org, choice)
	}
	return singleTenant(c, org, choice)
}

func singleTenant(c *registry.Client, org organization, choice *orgChoice) (organization, error) {
	org.Parent = c.Organization
	if choice == nil {
		return org, nil
	}
	if choice.Parent != "" {
		if !helseid.ValidOrgNumber(choice.Parent) {
			return org, badOrgNumber(choice.Parent)
		}
		if choice.Parent != c.Organization {
			return org, hid("HID-1001", "parent organisation %s is not the organisation of this single-tenant client", choice.Parent)
		}
	}
	child := choice.Child
	if child == "" {
		return org, nil
	}
	if !helseid.ValidOrgNumber(child) {
		return org, badOrgNumber(child)
	}
	if len(c.ChildOrganizations) == 0 {
		return org, hid("HID-1006", "this client is not set up to pass child organisation numbers")
	}
	if !slices.Contains(c.ChildOrganizations, child) {
		return org, hid("HID-1002", "child organisation %s is not on the client's list", child)
	}
	org.Child = child
	return org, nil
}

// multiTenant decides for a multi-tenant client: the organisation it names
// must have delegated to the client's supplier (the Altinn right of profile
// §6.1). A child is not checked against any list (profile §6.3).
func multiTenant(snap *registry.Snapshot, org organization, choice *orgChoice) (organization, error) {
	if choice == nil {
		return org, oauth.InvalidRequest("a multi-tenant client must name the organisation it acts for: " + multiTenantHowTo)
	}
	if choice.Parent == "" {
		// A bare number in the Enhetsregisteret system names a child of
		// a single-tenant client's own organisation; a multi-tenant
		// client has none.
		return org, oauth.InvalidRequest("a multi-tenant client names its parent organisation, not only a child: " + multiTenantHowTo)
	}
	if !helseid.ValidOrgNumber(choice.Parent) {
		return org, badOrgNumber(choice.Parent)
	}
	if choice.Child != "" && !helseid.ValidOrgNumber(choice.Child) {
		return org, badOrgNumber(choice.Child)
	}
	d, ok := snap.Delegation(choice.Parent, org.Supplier)
	if !ok || !d.Active() {
		// HelseID's text for this is not public (profile §6.3), and no
		// HID code is documented for it.
		return org, oauth.Newf(oauth.CodeInvalidRequest,
			"organisation %s has not delegated to the client's supplier %s the right to act for it in HelseID", choice.Parent, org.Supplier)
	}
	org.Parent, org.Child, org.Delegation = choice.Parent, choice.Child, d
	return org, nil
}

func badOrgNumber(n string) *oauth.Error {
	return hid("HID-1004", "organisation number %q is not nine digits with a valid check digit", n)
}

// accepted splits scopes into those the organisation may have and those of
// APIs whose terms of use it has not accepted, which a multi-tenant client
// gets left out of its token and listed in rejected_scope (profile §6.3).
// Scopes that belong to no API (openid, offline_access, ...) are always
// kept. A single-tenant client's organisation is taken to have accepted
// every API its client may use.
func (o organization) accepted(snap *registry.Snapshot, scopes []string) (kept, rejected []string) {
	if o.Delegation == nil {
		return scopes, nil
	}
	for _, s := range scopes {
		api, ok := snap.APIForScope(s)
		if ok && !slices.Contains(o.Delegation.AcceptedAPIs, api.Audience) {
			rejected = append(rejected, s)
			continue
		}
		kept = append(kept, s)
	}
	return kept, rejected
}

// termsNotAccepted refuses a request whose every scope was rejected: a
// token without any of its API's scopes would still open that API to APIs
// that do not check scopes.
func (o organization) termsNotAccepted(snap *registry.Snapshot, rejected []string) *oauth.Error {
	aud := "the API"
	if api, ok := snap.APIForScope(rejected[0]); ok {
		aud = api.Audience
	}
	return oauth.Newf(oauth.CodeInvalidScope, "organisation %s has not accepted the terms of use of %s", o.Parent, aud)
}
