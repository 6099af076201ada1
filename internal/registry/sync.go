package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/tillit-sts/tillit/internal/store"
)

// ErrNotFileManaged reports a record the file declares that already exists
// in the store without being file-managed (it was made by the CLI or the
// API). Sync refuses to take it over: the operator must either remove it
// from the file or delete the store's record.
var ErrNotFileManaged = errors.New("registry: exists in the store and is not managed by the file")

// maxAttempts bounds how often Sync re-reads a record that another process
// changed between Sync's read and its write (two instances starting with the
// same file is the usual case; the second then finds nothing to do).
const maxAttempts = 3

// Sync makes the store match want for the records the file manages, and
// reports what it changed. The store stays the source of truth; the file is
// applied at every start (shared/spec/decisions.md, "Where the registry
// lives"):
//
//   - A declared record that is missing is created with ManagedBy
//     store.ManagedByFile.
//   - A declared file-managed record that differs is updated; one that is
//     equal is not written, so a second Sync with the same want writes
//     nothing and RegistryVersion does not move. Lists that are sets
//     (scopes, grant types, ...) compare without regard to order.
//   - A file-managed record that want no longer declares is disabled
//     (Status store.StatusDisabled), never deleted, so that audit records
//     keep their references. Organisations have no status and are left
//     alone (Report.Kept). Delegations are disabled like clients: one that
//     stayed active would still let a supplier act for the organisation.
//   - Records with an empty ManagedBy (made by the CLI or the API) are never
//     touched. If want declares one of their IDs, Sync returns an error
//     wrapping ErrNotFileManaged for each and writes nothing.
//
// Sync is not one transaction: a store error part way leaves the records
// written so far, and the next Sync finishes the job. An empty Status in
// want means active.
func Sync(ctx context.Context, s store.Store, want Registry) (Report, error) {
	var rep Report
	orgs := orgOps(s)
	apis := apiOps(s)
	systems := systemOps(s)
	clients := clientOps(s)
	delegations := delegationOps(s)

	// Read and check everything before the first write, so that a refused
	// takeover or a duplicate leaves the store as it was.
	var errs []error
	orgHave, e := orgs.plan(ctx, want.Organizations)
	errs = append(errs, e...)
	apiHave, e := apis.plan(ctx, want.APIs)
	errs = append(errs, e...)
	systemHave, e := systems.plan(ctx, want.ClientSystems)
	errs = append(errs, e...)
	clientHave, e := clients.plan(ctx, want.Clients)
	errs = append(errs, e...)
	delegationHave, e := delegations.plan(ctx, want.Delegations)
	errs = append(errs, e...)
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}

	// Create and update in reference order (parents, APIs and systems
	// before what names them) in case a backend checks references; disable
	// in the opposite order.
	if err := orgs.apply(ctx, parentsFirst(want.Organizations), orgHave, &rep); err != nil {
		return rep, err
	}
	if err := apis.apply(ctx, want.APIs, apiHave, &rep); err != nil {
		return rep, err
	}
	if err := systems.apply(ctx, want.ClientSystems, systemHave, &rep); err != nil {
		return rep, err
	}
	if err := clients.apply(ctx, want.Clients, clientHave, &rep); err != nil {
		return rep, err
	}
	if err := delegations.apply(ctx, want.Delegations, delegationHave, &rep); err != nil {
		return rep, err
	}
	if err := delegations.retire(ctx, want.Delegations, delegationHave, &rep); err != nil {
		return rep, err
	}
	if err := clients.retire(ctx, want.Clients, clientHave, &rep); err != nil {
		return rep, err
	}
	if err := systems.retire(ctx, want.ClientSystems, systemHave, &rep); err != nil {
		return rep, err
	}
	if err := apis.retire(ctx, want.APIs, apiHave, &rep); err != nil {
		return rep, err
	}
	if err := orgs.retire(ctx, want.Organizations, orgHave, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// kindOps is what Sync needs to know about one kind of record.
type kindOps[T any] struct {
	kind   Kind
	id     func(*T) string
	meta   func(*T) *store.Meta
	status func(*T) *store.Status // nil: the kind has no status
	list   func(context.Context) ([]T, error)
	get    func(context.Context, string) (T, error)
	create func(context.Context, T) (T, error)
	update func(context.Context, T) (T, error)
	// canonical returns a copy for comparison: Meta zeroed, set-like lists
	// sorted, empty lists and maps nil.
	canonical func(T) T
}

func (k kindOps[T]) ref(v *T) Ref { return Ref{Kind: k.kind, ID: k.id(v)} }

// plan reads the stored records of this kind and checks want against them.
func (k kindOps[T]) plan(ctx context.Context, want []T) (map[string]T, []error) {
	var errs []error
	seen := make(map[string]bool, len(want))
	for i := range want {
		id := k.id(&want[i])
		switch {
		case id == "":
			errs = append(errs, fmt.Errorf("registry: %s %d has no id", k.kind, i))
		case seen[id]:
			errs = append(errs, fmt.Errorf("registry: %s declared twice", k.ref(&want[i])))
		}
		seen[id] = true
	}
	stored, err := k.list(ctx)
	if err != nil {
		return nil, append(errs, fmt.Errorf("registry: list %ss: %w", k.kind, err))
	}
	have := make(map[string]T, len(stored))
	for i := range stored {
		have[k.id(&stored[i])] = stored[i]
	}
	for i := range want {
		if h, ok := have[k.id(&want[i])]; ok && k.meta(&h).ManagedBy != store.ManagedByFile {
			errs = append(errs, fmt.Errorf("%s: %w", k.ref(&want[i]), ErrNotFileManaged))
		}
	}
	return have, errs
}

// apply creates or updates every record of want.
func (k kindOps[T]) apply(ctx context.Context, want []T, have map[string]T, rep *Report) error {
	for _, w := range want {
		if k.status != nil && *k.status(&w) == "" {
			*k.status(&w) = store.StatusActive
		}
		h, exists := have[k.id(&w)]
		if err := k.put(ctx, w, h, exists, rep); err != nil {
			return err
		}
	}
	return nil
}

func (k kindOps[T]) put(ctx context.Context, w, h T, exists bool, rep *Report) error {
	ref := k.ref(&w)
	for attempt := 1; ; attempt++ {
		var err error
		if !exists {
			*k.meta(&w) = store.Meta{ManagedBy: store.ManagedByFile}
			if _, err = k.create(ctx, w); err == nil {
				rep.Created = append(rep.Created, ref)
				return nil
			}
			if !errors.Is(err, store.ErrAlreadyExists) || attempt == maxAttempts {
				return fmt.Errorf("registry: create %s: %w", ref, err)
			}
		} else {
			if k.meta(&h).ManagedBy != store.ManagedByFile {
				// Made by someone else since plan read it.
				return fmt.Errorf("%s: %w", ref, ErrNotFileManaged)
			}
			if reflect.DeepEqual(k.canonical(w), k.canonical(h)) {
				return nil
			}
			*k.meta(&w) = *k.meta(&h)
			if _, err = k.update(ctx, w); err == nil {
				rep.Updated = append(rep.Updated, ref)
				return nil
			}
			if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) || attempt == maxAttempts {
				return fmt.Errorf("registry: update %s: %w", ref, err)
			}
		}
		// Another process wrote this record between our read and our
		// write: read it again and decide afresh.
		h, err = k.get(ctx, ref.ID)
		switch {
		case err == nil:
			exists = true
		case errors.Is(err, store.ErrNotFound):
			exists = false
		default:
			return fmt.Errorf("registry: read %s: %w", ref, err)
		}
	}
}

// retire disables the file-managed records that want no longer declares.
func (k kindOps[T]) retire(ctx context.Context, want []T, have map[string]T, rep *Report) error {
	declared := make(map[string]bool, len(want))
	for i := range want {
		declared[k.id(&want[i])] = true
	}
	ids := make([]string, 0, len(have))
	for id := range have {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a stable report and write order
	for _, id := range ids {
		h := have[id]
		if declared[id] || k.meta(&h).ManagedBy != store.ManagedByFile {
			continue
		}
		if k.status == nil {
			rep.Kept = append(rep.Kept, k.ref(&h))
			continue
		}
		if err := k.disable(ctx, h, rep); err != nil {
			return err
		}
	}
	return nil
}

func (k kindOps[T]) disable(ctx context.Context, h T, rep *Report) error {
	ref := k.ref(&h)
	for attempt := 1; ; attempt++ {
		if k.meta(&h).ManagedBy != store.ManagedByFile || *k.status(&h) == store.StatusDisabled {
			return nil
		}
		*k.status(&h) = store.StatusDisabled
		_, err := k.update(ctx, h)
		switch {
		case err == nil:
			rep.Disabled = append(rep.Disabled, ref)
			return nil
		case errors.Is(err, store.ErrNotFound):
			return nil // deleted meanwhile: nothing left to disable
		case !errors.Is(err, store.ErrConflict) || attempt == maxAttempts:
			return fmt.Errorf("registry: disable %s: %w", ref, err)
		}
		h, err = k.get(ctx, ref.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("registry: read %s: %w", ref, err)
		}
	}
}

// parentsFirst orders organisations so that a parent declared in the same
// list comes before its sub-units. Cycles (refused by config validation)
// keep their order.
func parentsFirst(orgs []store.Organization) []store.Organization {
	index := make(map[string]int, len(orgs))
	for i, o := range orgs {
		index[o.Number] = i
	}
	depth := func(i int) int {
		d := 0
		for seen := map[int]bool{i: true}; ; d++ {
			p, ok := index[orgs[i].Parent]
			if !ok || seen[p] {
				return d
			}
			seen[p] = true
			i = p
		}
	}
	out := slices.Clone(orgs)
	depths := make(map[string]int, len(orgs))
	for i, o := range orgs {
		depths[o.Number] = depth(i)
	}
	slices.SortStableFunc(out, func(a, b store.Organization) int { return depths[a.Number] - depths[b.Number] })
	return out
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func compactJSON(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func orgOps(s store.Store) kindOps[store.Organization] {
	return kindOps[store.Organization]{
		kind:   KindOrganization,
		id:     func(o *store.Organization) string { return o.Number },
		meta:   func(o *store.Organization) *store.Meta { return &o.Meta },
		list:   s.Organizations,
		get:    s.Organization,
		create: s.CreateOrganization,
		update: s.UpdateOrganization,
		canonical: func(o store.Organization) store.Organization {
			o.Meta = store.Meta{}
			return o
		},
	}
}

func apiOps(s store.Store) kindOps[store.API] {
	return kindOps[store.API]{
		kind:   KindAPI,
		id:     func(a *store.API) string { return a.Audience },
		meta:   func(a *store.API) *store.Meta { return &a.Meta },
		status: func(a *store.API) *store.Status { return &a.Status },
		list:   s.APIs,
		get:    s.API,
		create: s.CreateAPI,
		update: s.UpdateAPI,
		canonical: func(a store.API) store.API {
			a.Meta = store.Meta{}
			a.Scopes = sortedSet(a.Scopes)
			a.ClientClaims = sortedSet(a.ClientClaims)
			a.Owners = sortedSet(a.Owners)
			a.SubjectClaims = sortedSet(a.SubjectClaims)
			return a
		},
	}
}

func systemOps(s store.Store) kindOps[store.ClientSystem] {
	return kindOps[store.ClientSystem]{
		kind:   KindClientSystem,
		id:     func(c *store.ClientSystem) string { return c.ID },
		meta:   func(c *store.ClientSystem) *store.Meta { return &c.Meta },
		status: func(c *store.ClientSystem) *store.Status { return &c.Status },
		list:   s.ClientSystems,
		get:    s.ClientSystem,
		create: s.CreateClientSystem,
		update: s.UpdateClientSystem,
		canonical: func(c store.ClientSystem) store.ClientSystem {
			c.Meta = store.Meta{}
			c.APIs = sortedSet(c.APIs)
			return c
		},
	}
}

func clientOps(s store.Store) kindOps[store.Client] {
	return kindOps[store.Client]{
		kind:   KindClient,
		id:     func(c *store.Client) string { return c.ID },
		meta:   func(c *store.Client) *store.Meta { return &c.Meta },
		status: func(c *store.Client) *store.Status { return &c.Status },
		list:   s.Clients,
		get:    s.Client,
		create: s.CreateClient,
		update: s.UpdateClient,
		canonical: func(c store.Client) store.Client {
			c.Meta = store.Meta{}
			c.ChildOrganizations = sortedSet(c.ChildOrganizations)
			c.GrantTypes = sortedSet(c.GrantTypes)
			c.Scopes = sortedSet(c.Scopes)
			c.ExchangeActors = sortedSet(c.ExchangeActors)
			if len(c.Claims) == 0 {
				c.Claims = nil
			}
			c.JWKS = compactJSON(c.JWKS)
			return c
		},
	}
}

func delegationOps(s store.Store) kindOps[store.Delegation] {
	return kindOps[store.Delegation]{
		kind:   KindDelegation,
		id:     func(d *store.Delegation) string { return DelegationID(d.Organization, d.Supplier) },
		meta:   func(d *store.Delegation) *store.Meta { return &d.Meta },
		status: func(d *store.Delegation) *store.Status { return &d.Status },
		list:   s.Delegations,
		get: func(ctx context.Context, id string) (store.Delegation, error) {
			org, supplier := splitDelegationID(id)
			return s.Delegation(ctx, org, supplier)
		},
		create: s.CreateDelegation,
		update: s.UpdateDelegation,
		canonical: func(d store.Delegation) store.Delegation {
			d.Meta = store.Meta{}
			d.AcceptedAPIs = sortedSet(d.AcceptedAPIs)
			return d
		},
	}
}
