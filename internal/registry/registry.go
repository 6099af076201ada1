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
	APIs          []store.API
	Organizations []store.Organization
	ClientSystems []store.ClientSystem
	Clients       []store.Client
	Delegations   []store.Delegation
}

// Kind names a kind of registry record in reports and errors.
type Kind string

const (
	KindAPI          Kind = "api"
	KindOrganization Kind = "organisation"
	KindClientSystem Kind = "client system"
	KindClient       Kind = "client"
	KindDelegation   Kind = "delegation"
)

// Ref names one registry record: an API by audience, an organisation by
// number, a client system or client by ID, a delegation by DelegationID.
type Ref struct {
	Kind Kind
	ID   string
}

func (r Ref) String() string { return fmt.Sprintf("%s %q", r.Kind, r.ID) }

// DelegationID names a delegation in a Ref: "<organisation>:<supplier>".
func DelegationID(organization, supplier string) string { return organization + ":" + supplier }

// splitDelegationID is the inverse of DelegationID.
func splitDelegationID(id string) (organization, supplier string) {
	organization, supplier, _ = strings.Cut(id, ":")
	return organization, supplier
}

// Report says what Sync changed. A Sync that changed nothing has an empty
// Report and did not write to the store.
type Report struct {
	Created  []Ref
	Updated  []Ref
	Disabled []Ref
	// Kept lists file-managed organisations that are no longer in the file.
	// An organisation has no status to disable and grants nothing by
	// itself, so it is left as it is rather than deleted (audit records may
	// name it).
	Kept []Ref
}

// Changed reports whether Sync wrote anything.
func (r Report) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Disabled) > 0
}

// String is a one-line summary for the log.
func (r Report) String() string {
	var parts []string
	add := func(verb string, refs []Ref) {
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
