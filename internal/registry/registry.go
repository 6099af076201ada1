package registry

import (
	"strings"

	"github.com/tillit-sts/tillit/internal/store"
)

// Registry is a declared set of registry records: what the configuration
// file says should exist. Meta is ignored; Sync sets ManagedBy and the store
// sets the rest.
type Registry struct {
	APIs              []store.API
	Organizations     []store.Organization
	ClientSystems     []store.ClientSystem
	Clients           []store.Client
	Delegations       []store.Delegation
	IdentityProviders []store.IdentityProvider
	Persons           []store.Person
	HealthPersonnel   []store.HealthPersonnel
}

// kinds lists what Sync applies, in reference order: a record comes after
// the records it names (an organisation after its parent, a client after
// its client system and the APIs of its scopes).
func (r Registry) kinds() []syncer {
	return []syncer{
		declare(store.OrganizationKind, r.Organizations).applyIn(parentsFirst),
		declare(store.APIKind, r.APIs),
		declare(store.ClientSystemKind, r.ClientSystems),
		declare(store.ClientKind, r.Clients),
		declare(store.DelegationKind, r.Delegations),
		declare(store.IdentityProviderKind, r.IdentityProviders),
		declare(store.PersonKind, r.Persons),
		declare(store.HealthPersonnelKind, r.HealthPersonnel),
	}
}

// Report says what Sync changed. A Sync that changed nothing has an empty
// Report and did not write to the store.
type Report struct {
	Created  []store.Ref
	Updated  []store.Ref
	Disabled []store.Ref
	// Kept lists file-managed records of kinds without a status
	// (organisations) that are no longer in the file. Such a record has no
	// status to disable and grants nothing by itself, so it is left as it
	// is rather than deleted (audit records may name it).
	Kept []store.Ref
}

// Changed reports whether Sync wrote anything.
func (r Report) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Disabled) > 0
}

// String is a one-line summary for the log.
func (r Report) String() string {
	var parts []string
	add := func(verb string, refs []store.Ref) {
		if len(refs) == 0 {
			return
		}
		names := make([]string, len(refs))
		for i, ref := range refs {
			names[i] = ref.String()
		}
		parts = append(parts, verb+" "+strings.Join(names, ", "))
	}
	add("created", r.Created)
	add("updated", r.Updated)
	add("disabled", r.Disabled)
	add("kept", r.Kept)
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, "; ")
}
