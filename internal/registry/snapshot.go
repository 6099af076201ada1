package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/parallel"
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
// its client system and, parsed on first use, its public keys.
type Client struct {
	store.Client
	// System is the client's client system; nil when it does not exist.
	System *store.ClientSystem

	// keys is shared with the snapshots before and after this one for as
	// long as the JWKS stays the same, so that a key set is parsed at most
	// once, and only when the client is first used: a start with a
	// hundred thousand clients parses none of them.
	keys *keySet
}

// keySet is a client's JWKS, parsed once when first asked for.
type keySet struct {
	once sync.Once
	jwks []byte
	keys []jose.JSONWebKey
	err  error
}

func (k *keySet) get() ([]jose.JSONWebKey, error) {
	k.once.Do(func() {
		if len(k.jwks) == 0 {
			k.err = errors.New("no public keys registered")
			return
		}
		k.keys, k.err = ParseJWKS(k.jwks)
	})
	return k.keys, k.err
}

// parsedKeySet is a keySet whose keys are known already.
func parsedKeySet(jwks []byte, keys []jose.JSONWebKey) *keySet {
	k := &keySet{jwks: jwks}
	k.once.Do(func() { k.keys = keys })
	return k
}

// Keys are the client's public keys, checked as ParseJWKS checks them,
// each with a kid; nil when Err is not nil.
func (c *Client) Keys() []jose.JSONWebKey {
	if c.Err() != nil {
		return nil
	}
	keys, _ := c.keys.get()
	return keys
}

// Err says why the client cannot authenticate although it is registered:
// its JWKS is unusable, its client system is missing, or it asks for ID
// tokens in an algorithm no key signs them with (such as none or HS256:
// it is refused rather than given another). Records made outside the file
// are not validated when they are written, so a broken one is kept with
// the reason, and the token endpoint answers invalid_client for it instead
// of failing for everyone.
func (c *Client) Err() error {
	_, keysErr := c.keys.get()
	alg := jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg)
	algOK := alg == "" || idtoken.Supported(alg)
	if c.System != nil && keysErr == nil && algOK {
		return nil
	}
	var errs []error
	if c.System == nil {
		errs = append(errs, fmt.Errorf("client system %q does not exist", c.Client.System))
	}
	if keysErr != nil {
		errs = append(errs, keysErr)
	}
	if !algOK {
		errs = append(errs, fmt.Errorf("id_token_signed_response_alg %q is not one of %s", alg,
			strings.Join(jws.AlgorithmNames(idtoken.Algorithms), ", ")))
	}
	return fmt.Errorf("registry: client %q: %w", c.ID, errors.Join(errs...))
}

// Active reports whether the client may get tokens now: it and its client
// system are active and its registration is usable.
func (c *Client) Active() bool {
	return c.Status == store.StatusActive &&
		c.System != nil && c.System.Status == store.StatusActive && c.Err() == nil
}

// KeySets are parsed public key sets by their JWKS text, as the
// configuration parsed them while validating the file. Load uses them for
// the clients whose stored JWKS is the same text, so that a start parses
// each key once.
type KeySets map[string][]jose.JSONWebKey

// Load reads the whole registry from s. keys, which may be nil, are key
// sets parsed already.
//
// It reads every record and the version in one consistent read, as the
// changes since before the first version. Records of kinds the snapshot
// does not hold (persons) are read and left out.
func Load(ctx context.Context, s store.Store, keys KeySets) (*Snapshot, error) {
	changes, version, err := s.RecordChanges(ctx, -1)
	if err != nil {
		return nil, fmt.Errorf("registry: load: %w", err)
	}
	return empty().patch(version, fromStore(changes), keys)
}

// change is a registry change as patch applies it: the store's, and when
// the caller has it in hand already (the records Sync wrote) the record
// itself, of its kind's type, so that it is not decoded again.
type change struct {
	store.RecordChange
	value any
}

func fromStore(cs []store.RecordChange) []change {
	out := make([]change, len(cs))
	for i, c := range cs {
		out[i].RecordChange = c
	}
	return out
}

// decode returns the record of c, of kind k.
func decode[T any](k *store.Kind[T], c change) (T, error) {
	if v, ok := c.value.(T); ok {
		return v, nil
	}
	return k.Decode(c.Record.Doc, c.Record.Meta)
}

func empty() *Snapshot {
	return &Snapshot{
		byAud:       map[string]*store.API{},
		byScope:     map[string]*store.API{},
		orgs:        map[string]*store.Organization{},
		systems:     map[string]*store.ClientSystem{},
		clients:     map[string]*Client{},
		delegations: map[string]map[string]*store.Delegation{},
		idps:        map[string]*store.IdentityProvider{},
		hpr:         map[string]*store.HealthPersonnel{},
		hprByPID:    map[string]*store.HealthPersonnel{},
	}
}

// patch returns a new snapshot at version: snap with changes applied.
// snap is not modified, and the new snapshot shares with it whatever did
// not change: a map is copied only when a record of its kind changed, and
// a client's keys are parsed again only when its JWKS changed. A change to
// one client thus costs a copy of the client map (pointers), not a
// rebuild of the registry.
func (snap *Snapshot) patch(version int64, changes []change, keys KeySets) (*Snapshot, error) {
	next := *snap
	next.version = version
	var (
		copied         = map[string]bool{}
		apisChanged    bool
		systemsChanged = map[string]bool{}
		clients        []change
	)
	// own reports whether kind changes here for the first time: its map,
	// still shared with snap, must then be copied before it is written.
	own := func(kind string) bool {
		if copied[kind] {
			return false
		}
		copied[kind] = true
		return true
	}
	for _, c := range changes {
		r := c.Record
		switch r.Kind {
		case store.APIKind.Name:
			if own(r.Kind) {
				next.byAud = maps.Clone(next.byAud)
			}
			apisChanged = true
			if err := put(next.byAud, store.APIKind, c); err != nil {
				return nil, err
			}
		case store.OrganizationKind.Name:
			if own(r.Kind) {
				next.orgs = maps.Clone(next.orgs)
			}
			if err := put(next.orgs, store.OrganizationKind, c); err != nil {
				return nil, err
			}
		case store.ClientSystemKind.Name:
			if own(r.Kind) {
				next.systems = maps.Clone(next.systems)
			}
			systemsChanged[r.Key] = true
			if err := put(next.systems, store.ClientSystemKind, c); err != nil {
				return nil, err
			}
		case store.ClientKind.Name:
			// After the loop, when the client systems are in place.
			clients = append(clients, c)
		case store.DelegationKind.Name:
			if own(r.Kind) {
				next.delegations = maps.Clone(next.delegations)
			}
			if err := next.putDelegation(c, copied); err != nil {
				return nil, err
			}
		case store.IdentityProviderKind.Name:
			if own(r.Kind) {
				next.idps = maps.Clone(next.idps)
			}
			if err := put(next.idps, store.IdentityProviderKind, c); err != nil {
				return nil, err
			}
		case store.HealthPersonnelKind.Name:
			if own(r.Kind) {
				next.hpr = maps.Clone(next.hpr)
			}
			if err := put(next.hpr, store.HealthPersonnelKind, c); err != nil {
				return nil, err
			}
		}
		// A kind this build does not know (written by a newer one) is
		// left out: nothing here would read it.
	}
	if apisChanged {
		next.indexAPIs()
	}
	if copied[store.HealthPersonnelKind.Name] {
		next.indexHPR()
	}
	if len(clients) > 0 || len(systemsChanged) > 0 {
		next.clients = maps.Clone(next.clients)
	}
	// setClient replaces a client, keeping the count of login clients.
	setClient := func(id string, c *Client) {
		if old, ok := next.clients[id]; ok && old.login() {
			next.loginClients--
		}
		if c == nil {
			delete(next.clients, id)
			return
		}
		if c.login() {
			next.loginClients++
		}
		next.clients[id] = c
	}
	if len(systemsChanged) > 0 {
		// The clients of a changed system point to the old one: give them
		// the new one, keeping their parsed keys.
		for id, c := range next.clients {
			if systemsChanged[c.Client.System] {
				setClient(id, next.withSystem(c))
			}
		}
	}
	decoded, err := decodeClients(clients)
	if err != nil {
		return nil, err
	}
	for i, c := range clients {
		if c.Deleted {
			setClient(c.Record.Key, nil)
			continue
		}
		rec := decoded[i]
		setClient(rec.ID, next.newClient(rec, snap.clients[rec.ID], keys))
	}
	return &next, nil
}

// parallelDecode is how many client records make decoding them on every
// core worth it: a start reads the whole registry, a change a few.
const parallelDecode = 1000

// decodeClients decodes the client records of changes, deletions left
// zero, on every core when there are many.
func decodeClients(changes []change) ([]store.Client, error) {
	out := make([]store.Client, len(changes))
	err := parallel.For(len(changes), parallelDecode, func(i int) error {
		c := changes[i]
		if c.Deleted {
			return nil
		}
		var err error
		out[i], err = decode(store.ClientKind, c)
		return err
	})
	return out, err
}

// login reports whether c counts as a client that may log people in. The
// grant is looked at first: the keys of the clients without it are not
// parsed to count them.
func (c *Client) login() bool {
	return slices.Contains(c.GrantTypes, "authorization_code") && c.Active()
}

// indexHPR makes the index of the active HPR entries by pid. The file
// allows one entry per pid; of several made by hand, the lowest number
// wins.
func (snap *Snapshot) indexHPR() {
	snap.hprByPID = make(map[string]*store.HealthPersonnel, len(snap.hpr))
	for _, number := range slices.Sorted(maps.Keys(snap.hpr)) {
		h := snap.hpr[number]
		if _, taken := snap.hprByPID[h.PID]; h.Status == store.StatusActive && !taken {
			snap.hprByPID[h.PID] = h
		}
	}
}

// put applies change c of kind k to m.
func put[T any](m map[string]*T, k *store.Kind[T], c change) error {
	if c.Deleted {
		delete(m, c.Record.Key)
		return nil
	}
	rec, err := decode(k, c)
	if err != nil {
		return err
	}
	m[c.Record.Key] = &rec
	return nil
}

func (snap *Snapshot) putDelegation(c change, copied map[string]bool) error {
	var d store.Delegation
	if c.Deleted {
		// The key is organisation, tab, supplier (store.DelegationKey).
		d.Organization, d.Supplier, _ = strings.Cut(c.Record.Key, "\t")
	} else {
		var err error
		if d, err = decode(store.DelegationKind, c); err != nil {
			return err
		}
	}
	// The inner maps are shared with older snapshots too: copy the one of
	// this organisation once.
	inner := "delegation\x00" + d.Organization
	bySupplier := snap.delegations[d.Organization]
	if !copied[inner] {
		copied[inner] = true
		bySupplier = maps.Clone(bySupplier)
		if bySupplier == nil {
			bySupplier = map[string]*store.Delegation{}
		}
		snap.delegations[d.Organization] = bySupplier
	}
	if c.Deleted {
		delete(bySupplier, d.Supplier)
		if len(bySupplier) == 0 {
			delete(snap.delegations, d.Organization)
		}
		return nil
	}
	bySupplier[d.Supplier] = &d
	return nil
}

// indexAPIs makes the ordered list and the scope index from byAud.
func (snap *Snapshot) indexAPIs() {
	snap.apis = slices.SortedFunc(maps.Values(snap.byAud), func(a, b *store.API) int { return strings.Compare(a.Audience, b.Audience) })
	snap.byScope = make(map[string]*store.API)
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
}

func ownsScope(a *store.API, scope string) bool {
	return strings.HasPrefix(scope, a.Audience+"/")
}

// newClient makes the snapshot's client for c. Its keys come from prev
// (the client in the snapshot before) when the JWKS is unchanged, else
// from keys, else they are parsed when first used.
func (snap *Snapshot) newClient(c store.Client, prev *Client, keys KeySets) *Client {
	out := &Client{Client: c}
	switch parsed, ok := keys[string(c.JWKS)]; {
	case prev != nil && bytes.Equal(prev.JWKS, c.JWKS):
		out.keys = prev.keys
	case ok && len(c.JWKS) > 0:
		out.keys = parsedKeySet(c.JWKS, parsed)
	default:
		out.keys = &keySet{jwks: c.JWKS}
	}
	return snap.withSystem(out)
}

// withSystem returns a copy of c with its client system from snap.
func (snap *Snapshot) withSystem(c *Client) *Client {
	out := *c
	out.System = snap.systems[c.Client.System]
	return &out
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

// IDTokenAlgorithm is the algorithm c's ID tokens are signed with: the one
// it registered, or idtoken.DefaultAlgorithm.
func (c *Client) IDTokenAlgorithm() jose.SignatureAlgorithm {
	if c.IDTokenSignedResponseAlg == "" {
		return idtoken.DefaultAlgorithm
	}
	return jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg)
}

// IDTokenAlgorithms are the algorithms the clients that may log people in
// have asked their ID tokens to be signed with, each once, by name;
// idtoken.DefaultAlgorithm is left out unless a client names it. Clients
// of any status count: one enabled again finds its key ready.
func (snap *Snapshot) IDTokenAlgorithms() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, c := range snap.clients {
		alg := jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg)
		if alg != "" && idtoken.Supported(alg) && slices.Contains(c.GrantTypes, "authorization_code") && !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	slices.Sort(out)
	return out
}

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
