package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/store"
)

// Snapshot is an immutable view of the whole registry at one
// RegistryVersion. The token endpoint reads it on every request without
// touching the store. Everything it returns is shared with other readers:
// callers must not modify it.
type Snapshot struct {
	version int64
	apis    []*store.API // by audience
	byAud   map[string]*store.API
	byScope map[string]*store.API
	orgs    map[string]*store.Organization
	systems map[string]*store.ClientSystem
	clients map[string]*Client
	// delegations by organisation, then supplier.
	delegations map[string]map[string]*store.Delegation
	idps        map[string]*store.IdentityProvider
	// hpr by HPR number, and the active entries by pid. Persons are not
	// here: a test population may be large, and only a login reads it.
	hpr      map[string]*store.HealthPersonnel
	hprByPID map[string]*store.HealthPersonnel
	// loginClients counts the active clients with the authorization_code
	// grant, for discovery.
	loginClients int
}

// Client is a registered client with what the token endpoint needs ready:
// its parsed public keys and its client system.
type Client struct {
	store.Client
	// Keys are the client's public keys, checked as ParseJWKS checks them,
	// each with a kid. Empty when Err is set.
	Keys []jose.JSONWebKey
	// System is the client's client system; nil when it does not exist.
	System *store.ClientSystem
	// Err says why the client cannot authenticate although it is
	// registered: its JWKS is unusable or its client system is missing.
	// Records made outside the file are not validated when they are written,
	// so a broken one is kept here with the reason, and the token endpoint
	// answers invalid_client for it instead of failing for everyone.
	Err error
}

// Active reports whether the client may get tokens now: it and its client
// system are active and its registration is usable.
func (c *Client) Active() bool {
	return c.Err == nil && c.Status == store.StatusActive &&
		c.System != nil && c.System.Status == store.StatusActive
}

// Load reads the whole registry from s.
//
// The version is read before the records, so a change that lands while
// Load runs can only make the records newer than the version says; the next
// poll then sees a new version and loads again. The reverse, a version newer
// than the records, could hide a change until the next unrelated one.
func Load(ctx context.Context, s store.Store) (*Snapshot, error) {
	version, err := s.RegistryVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry: version: %w", err)
	}
	var r Registry
	err = load(ctx, s, store.APIKind, &r.APIs, nil)
	err = load(ctx, s, store.OrganizationKind, &r.Organizations, err)
	err = load(ctx, s, store.ClientSystemKind, &r.ClientSystems, err)
	err = load(ctx, s, store.ClientKind, &r.Clients, err)
	err = load(ctx, s, store.DelegationKind, &r.Delegations, err)
	err = load(ctx, s, store.IdentityProviderKind, &r.IdentityProviders, err)
	err = load(ctx, s, store.HealthPersonnelKind, &r.HealthPersonnel, err)
	if err != nil {
		return nil, err
	}
	return newSnapshot(version, r), nil
}

// load reads every record of kind k into into, unless an earlier load
// failed with prev.
func load[T any](ctx context.Context, s store.Store, k *store.Kind[T], into *[]T, prev error) error {
	if prev != nil {
		return prev
	}
	recs, err := store.List(ctx, s, k)
	if err != nil {
		return fmt.Errorf("registry: load %s records: %w", k.Name, err)
	}
	*into = recs
	return nil
}

func newSnapshot(version int64, r Registry) *Snapshot {
	snap := &Snapshot{
		version: version,
		apis:    make([]*store.API, 0, len(r.APIs)),
		byAud:   make(map[string]*store.API, len(r.APIs)),
		byScope: make(map[string]*store.API),
		orgs:    make(map[string]*store.Organization, len(r.Organizations)),
		systems: make(map[string]*store.ClientSystem, len(r.ClientSystems)),
		clients: make(map[string]*Client, len(r.Clients)),

		delegations: make(map[string]map[string]*store.Delegation),
		idps:        make(map[string]*store.IdentityProvider, len(r.IdentityProviders)),
		hpr:         make(map[string]*store.HealthPersonnel, len(r.HealthPersonnel)),
		hprByPID:    make(map[string]*store.HealthPersonnel, len(r.HealthPersonnel)),
	}
	for i := range r.APIs {
		a := &r.APIs[i]
		snap.apis = append(snap.apis, a)
		snap.byAud[a.Audience] = a
	}
	slices.SortFunc(snap.apis, func(a, b *store.API) int { return strings.Compare(a.Audience, b.Audience) })
	// The file's validation keeps scopes unique, but records made by the
	// CLI are not checked against each other. When two APIs claim a scope,
	// the API whose audience prefixes the scope (the HelseID convention)
	// wins, then the first by audience; either way every instance decides
	// the same.
	for _, a := range snap.apis {
		for _, scope := range a.Scopes {
			prev, taken := snap.byScope[scope]
			if !taken || (!ownsScope(prev, scope) && ownsScope(a, scope)) {
				snap.byScope[scope] = a
			}
		}
	}
	for i := range r.Organizations {
		snap.orgs[r.Organizations[i].Number] = &r.Organizations[i]
	}
	for i := range r.ClientSystems {
		snap.systems[r.ClientSystems[i].ID] = &r.ClientSystems[i]
	}
	for _, c := range r.Clients {
		cl := snap.newClient(c)
		snap.clients[c.ID] = cl
		if cl.Active() && slices.Contains(c.GrantTypes, "authorization_code") {
			snap.loginClients++
		}
	}
	for i := range r.Delegations {
		d := &r.Delegations[i]
		bySupplier := snap.delegations[d.Organization]
		if bySupplier == nil {
			bySupplier = make(map[string]*store.Delegation)
			snap.delegations[d.Organization] = bySupplier
		}
		bySupplier[d.Supplier] = d
	}
	for i := range r.IdentityProviders {
		snap.idps[r.IdentityProviders[i].Name] = &r.IdentityProviders[i]
	}
	for i := range r.HealthPersonnel {
		h := &r.HealthPersonnel[i]
		snap.hpr[h.Number] = h
		if h.Status == store.StatusActive {
			// The file allows one entry per pid; of several made by
			// hand, the lowest number wins, as List orders them.
			if _, ok := snap.hprByPID[h.PID]; !ok {
				snap.hprByPID[h.PID] = h
			}
		}
	}
	return snap
}

func ownsScope(a *store.API, scope string) bool {
	return strings.HasPrefix(scope, a.Audience+"/")
}

func (snap *Snapshot) newClient(c store.Client) *Client {
	out := &Client{Client: c, System: snap.systems[c.System]}
	var errs []error
	if out.System == nil {
		errs = append(errs, fmt.Errorf("client system %q does not exist", c.System))
	}
	if len(c.JWKS) == 0 {
		errs = append(errs, errors.New("no public keys registered"))
	} else if keys, err := ParseJWKS(c.JWKS); err != nil {
		errs = append(errs, err)
	} else {
		out.Keys = keys
	}
	if len(errs) > 0 {
		out.Err = fmt.Errorf("registry: client %q: %w", c.ID, errors.Join(errs...))
	}
	return out
}

// Version is the RegistryVersion the snapshot was loaded at.
func (snap *Snapshot) Version() int64 { return snap.version }

// Client returns the client with the given ID, whatever its status.
func (snap *Snapshot) Client(id string) (*Client, bool) {
	c, ok := snap.clients[id]
	return c, ok
}

// API returns the API with the given audience, whatever its status.
func (snap *Snapshot) API(audience string) (*store.API, bool) {
	a, ok := snap.byAud[audience]
	return a, ok
}

// APIForScope returns the API that declares scope. Scopes that no API
// declares (openid, helseid://scopes/...) have none.
func (snap *Snapshot) APIForScope(scope string) (*store.API, bool) {
	a, ok := snap.byScope[scope]
	return a, ok
}

// APIs returns every API ordered by audience.
func (snap *Snapshot) APIs() []*store.API { return slices.Clone(snap.apis) }

// Organization returns the organisation with the given number.
func (snap *Snapshot) Organization(number string) (*store.Organization, bool) {
	o, ok := snap.orgs[number]
	return o, ok
}

// ClientSystem returns the client system with the given ID.
func (snap *Snapshot) ClientSystem(id string) (*store.ClientSystem, bool) {
	s, ok := snap.systems[id]
	return s, ok
}

// Delegation returns the delegation from organisation to supplier, whatever
// its status (store.Delegation.Active says whether it grants anything).
func (snap *Snapshot) Delegation(organization, supplier string) (*store.Delegation, bool) {
	d, ok := snap.delegations[organization][supplier]
	return d, ok
}

// IdentityProvider returns the identity provider with the given name,
// whatever its status.
func (snap *Snapshot) IdentityProvider(name string) (*store.IdentityProvider, bool) {
	p, ok := snap.idps[name]
	return p, ok
}

// LoginClients counts the active clients that may log people in (the
// authorization_code grant).
func (snap *Snapshot) LoginClients() int { return snap.loginClients }

// IdentityProviders returns every identity provider ordered by name,
// whatever its status.
func (snap *Snapshot) IdentityProviders() []*store.IdentityProvider {
	out := make([]*store.IdentityProvider, 0, len(snap.idps))
	for _, p := range snap.idps {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *store.IdentityProvider) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// HealthPersonnel returns the HPR entry with the given number, whatever
// its status.
func (snap *Snapshot) HealthPersonnel(number string) (*store.HealthPersonnel, bool) {
	h, ok := snap.hpr[number]
	return h, ok
}

// HealthPersonnelByPID returns the active HPR entry of a person: what a
// login with that pid gets as its hpr_number and hpr_details.
func (snap *Snapshot) HealthPersonnelByPID(pid string) (*store.HealthPersonnel, bool) {
	h, ok := snap.hprByPID[pid]
	return h, ok
}
