package registry

import (
	"fmt"
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

	// Keys, when set, are the clients' key sets already parsed, for Load.
	// Sync does not read them.
	Keys KeySets
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

	// written are the records as stored, and txns the transactions that
	// wrote them: with no other writer they are every change since the
	// snapshot Sync started from, and a Watcher patches it with them
	// instead of reading them back.
	written []change
	txns    int
}

// wrote notes one transaction that stored recs of kind k: stored as the
// store returned them, recs as they were written. The documents are not
// kept: the records are at hand, and at a first start the documents of
// every record would be tens of megabytes.
func wrote[T any](r *Report, k *store.Kind[T], stored []store.Record, recs []T) {
	r.txns++
	for i, st := range stored {
		rec := recs[i]
		*k.Meta(&rec) = st.Meta
		st.Doc = ""
		r.written = append(r.written, change{RecordChange: store.RecordChange{Record: st}, value: rec})
	}
}

// wroteOne notes one transaction that stored rec of kind k, as the store
// returned it.
func wroteOne[T any](r *Report, k *store.Kind[T], rec T) error {
	stored := store.Record{Kind: k.Name, Key: k.Key(&rec), Meta: *k.Meta(&rec)}
	wrote(r, k, []store.Record{stored}, []T{rec})
	return nil
}

// Changed reports whether Sync wrote anything.
func (r Report) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Disabled) > 0
}

// reportNames is how many records String names for each verb.
const reportNames = 5

// String is a one-line summary for the log: for each of created, updated,
// disabled and kept, the number of records by kind and the first few, so
// that a large change makes a short line.
func (r Report) String() string {
	var parts []string
	add := func(verb string, refs []store.Ref) {
		if len(refs) == 0 {
			return
		}
		var kinds []string
		counts := make(map[string]int)
		for _, ref := range refs {
			if counts[ref.Kind] == 0 {
				kinds = append(kinds, ref.Kind)
			}
			counts[ref.Kind]++
		}
		perKind := make([]string, len(kinds))
		for i, k := range kinds {
			perKind[i] = fmt.Sprintf("%d %s", counts[k], k)
		}
		names := make([]string, 0, reportNames)
		for _, ref := range refs[:min(len(refs), reportNames)] {
			names = append(names, ref.String())
		}
		part := fmt.Sprintf("%s %d (%s): %s", verb, len(refs), strings.Join(perKind, ", "), strings.Join(names, ", "))
		if len(refs) > reportNames {
			part += fmt.Sprintf(" and %d more", len(refs)-reportNames)
		}
		parts = append(parts, part)
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
