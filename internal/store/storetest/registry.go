package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// kind adapts one registry record type to the generic registry tests.
type kind[T any] struct {
	name   string
	create func(context.Context, store.Store, T) (T, error)
	update func(context.Context, store.Store, T) (T, error)
	get    func(context.Context, store.Store, string) (T, error)
	list   func(context.Context, store.Store) ([]T, error)
	delete func(context.Context, store.Store, string) error
	key    func(*T) *string
	meta   func(*T) *store.Meta
	// full returns a record with every field set to a non-zero value.
	full func(key string) T
	// change alters every non-key field of a record.
	change func(*T)
}

func runRegistry(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("API", func(t *testing.T) { runKind(t, open, apiKind) })
	t.Run("Organisation", func(t *testing.T) { runKind(t, open, organizationKind) })
	t.Run("ClientSystem", func(t *testing.T) { runKind(t, open, clientSystemKind) })
	t.Run("Client", func(t *testing.T) { runKind(t, open, clientKind) })
	t.Run("Delegation", func(t *testing.T) { runKind(t, open, delegationKind) })
	t.Run("DelegationPairs", func(t *testing.T) { testDelegationPairs(t, open) })
	t.Run("KindsAreSeparate", func(t *testing.T) { testKindsAreSeparate(t, open) })
}

var apiKind = kind[store.API]{
	name:   "API",
	create: func(ctx context.Context, s store.Store, r store.API) (store.API, error) { return s.CreateAPI(ctx, r) },
	update: func(ctx context.Context, s store.Store, r store.API) (store.API, error) { return s.UpdateAPI(ctx, r) },
	get:    func(ctx context.Context, s store.Store, k string) (store.API, error) { return s.API(ctx, k) },
	list:   func(ctx context.Context, s store.Store) ([]store.API, error) { return s.APIs(ctx) },
	delete: func(ctx context.Context, s store.Store, k string) error { return s.DeleteAPI(ctx, k) },
	key:    func(r *store.API) *string { return &r.Audience },
	meta:   func(r *store.API) *store.Meta { return &r.Meta },
	full: func(key string) store.API {
		return store.API{
			Audience:            key,
			Name:                "Reseptformidleren",
			Scopes:              []string{key + "/read", key + "/write"},
			ClientClaims:        []string{"orgnr_supplier", "sfm-id"},
			AllowBearer:         true,
			AccessTokenLifetime: 15 * time.Minute,
			Status:              store.StatusActive,
			Owners:              []string{"sfm-actor", "sfm-actor-2"},
			ExchangeByDefault:   true,
			SubjectClaims:       []string{"e-helse:sfm.api/client/claims/sfm-id", "nhn:sfm:journal-id"},
			Meta:                store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.API) {
		r.Name += " (changed)"
		r.Scopes = []string{r.Audience + "/admin"}
		r.ClientClaims = nil
		r.AllowBearer = !r.AllowBearer
		r.AccessTokenLifetime += time.Second
		r.Status = store.StatusDisabled
		r.Owners = []string{"other-owner"}
		r.ExchangeByDefault = !r.ExchangeByDefault
		r.SubjectClaims = nil
		r.ManagedBy = ""
	},
}

var organizationKind = kind[store.Organization]{
	name: "Organisation",
	create: func(ctx context.Context, s store.Store, r store.Organization) (store.Organization, error) {
		return s.CreateOrganization(ctx, r)
	},
	update: func(ctx context.Context, s store.Store, r store.Organization) (store.Organization, error) {
		return s.UpdateOrganization(ctx, r)
	},
	get: func(ctx context.Context, s store.Store, k string) (store.Organization, error) {
		return s.Organization(ctx, k)
	},
	list:   func(ctx context.Context, s store.Store) ([]store.Organization, error) { return s.Organizations(ctx) },
	delete: func(ctx context.Context, s store.Store, k string) error { return s.DeleteOrganization(ctx, k) },
	key:    func(r *store.Organization) *string { return &r.Number },
	meta:   func(r *store.Organization) *store.Meta { return &r.Meta },
	full: func(key string) store.Organization {
		return store.Organization{
			Number: key,
			Name:   "Helsehuset Nord – avd. Ø",
			Parent: "994598759",
			Meta:   store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.Organization) {
		r.Name += " (changed)"
		r.Parent = ""
		r.ManagedBy = "cli"
	},
}

var clientSystemKind = kind[store.ClientSystem]{
	name: "ClientSystem",
	create: func(ctx context.Context, s store.Store, r store.ClientSystem) (store.ClientSystem, error) {
		return s.CreateClientSystem(ctx, r)
	},
	update: func(ctx context.Context, s store.Store, r store.ClientSystem) (store.ClientSystem, error) {
		return s.UpdateClientSystem(ctx, r)
	},
	get: func(ctx context.Context, s store.Store, k string) (store.ClientSystem, error) {
		return s.ClientSystem(ctx, k)
	},
	list:   func(ctx context.Context, s store.Store) ([]store.ClientSystem, error) { return s.ClientSystems(ctx) },
	delete: func(ctx context.Context, s store.Store, k string) error { return s.DeleteClientSystem(ctx, k) },
	key:    func(r *store.ClientSystem) *string { return &r.ID },
	meta:   func(r *store.ClientSystem) *store.Meta { return &r.Meta },
	full: func(key string) store.ClientSystem {
		return store.ClientSystem{
			ID:       key,
			Name:     "Journalsystem",
			Supplier: "912345678",
			APIs:     []string{"nhn:deft", "e-helse:sfm.api"},
			Status:   store.StatusPending,
			Meta:     store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.ClientSystem) {
		r.Name += " (changed)"
		r.Supplier = "987654321"
		r.APIs = append(r.APIs, "nhn:kjernejournal")
		r.Status = store.StatusActive
		r.ManagedBy = ""
	},
}

var clientKind = kind[store.Client]{
	name: "Client",
	create: func(ctx context.Context, s store.Store, r store.Client) (store.Client, error) {
		return s.CreateClient(ctx, r)
	},
	update: func(ctx context.Context, s store.Store, r store.Client) (store.Client, error) {
		return s.UpdateClient(ctx, r)
	},
	get:    func(ctx context.Context, s store.Store, k string) (store.Client, error) { return s.Client(ctx, k) },
	list:   func(ctx context.Context, s store.Store) ([]store.Client, error) { return s.Clients(ctx) },
	delete: func(ctx context.Context, s store.Store, k string) error { return s.DeleteClient(ctx, k) },
	key:    func(r *store.Client) *string { return &r.ID },
	meta:   func(r *store.Client) *store.Meta { return &r.Meta },
	full: func(key string) store.Client {
		return store.Client{
			ID:                 key,
			Name:               "Legekontoret",
			System:             "journalsystem",
			Tenancy:            store.SingleTenant,
			Organization:       "994598759",
			ChildOrganizations: []string{"912345678", "987654321"},
			JWKS:               []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}` + "\x00\xff"),
			GrantTypes:         []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
			Scopes:             []string{"nhn:deft/api", "e-helse:sfm.api/sfm.api"},
			Claims: map[string]string{
				"e-helse:sfm.api/client/claims/sfm-id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
				"nhn:sfm:journal-id":                   "journal-7",
			},
			Status:               store.StatusActive,
			RequireDPoP:          true,
			AccessTokenLifetime:  90 * time.Second,
			ExchangeActors:       []string{"sfm-actor"},
			RefreshTokenLifetime: 10 * time.Hour,
			Meta:                 store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.Client) {
		r.Name += " (changed)"
		r.System = "other-system"
		r.Tenancy = store.MultiTenant
		r.Organization = ""
		r.ChildOrganizations = nil
		r.JWKS = []byte(`{"keys":[]}`)
		r.GrantTypes = []string{"client_credentials"}
		r.Scopes = append(r.Scopes, "nhn:kjernejournal/api")
		r.Claims = map[string]string{"nhn:sfm:journal-id": "journal-8"}
		r.Status = store.StatusDisabled
		r.RequireDPoP = false
		r.AccessTokenLifetime = 0
		r.ExchangeActors = []string{"sfm-actor", "kj-actor"}
		r.RefreshTokenLifetime = time.Hour
		r.ManagedBy = ""
	},
}

var delegationKind = kind[store.Delegation]{
	name: "Delegation",
	create: func(ctx context.Context, s store.Store, r store.Delegation) (store.Delegation, error) {
		return s.CreateDelegation(ctx, r)
	},
	update: func(ctx context.Context, s store.Store, r store.Delegation) (store.Delegation, error) {
		return s.UpdateDelegation(ctx, r)
	},
	// The generic tests key a delegation by its organisation alone, with
	// an empty supplier (as in their zero-value record); the pairs are
	// tested by testDelegationPairs.
	get: func(ctx context.Context, s store.Store, k string) (store.Delegation, error) {
		return s.Delegation(ctx, k, "")
	},
	list: func(ctx context.Context, s store.Store) ([]store.Delegation, error) { return s.Delegations(ctx) },
	delete: func(ctx context.Context, s store.Store, k string) error {
		return s.DeleteDelegation(ctx, k, "")
	},
	key:  func(r *store.Delegation) *string { return &r.Organization },
	meta: func(r *store.Delegation) *store.Meta { return &r.Meta },
	full: func(key string) store.Delegation {
		return store.Delegation{
			Organization: key,
			AcceptedAPIs: []string{"nhn:deft", "e-helse:sfm.api"},
			Status:       store.StatusActive,
			Meta:         store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.Delegation) {
		r.AcceptedAPIs = []string{"nhn:kjernejournal"}
		r.Status = store.StatusDisabled
		r.ManagedBy = "cli"
	},
}

// testDelegationPairs checks that a delegation is keyed by both numbers:
// one organisation may delegate to several suppliers and the reverse, and
// Delegations lists them by organisation, then supplier.
func testDelegationPairs(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	pairs := [][2]string{{"111111111", "222222222"}, {"111111111", "333333333"}, {"444444444", "222222222"}}
	for _, p := range pairs {
		if _, err := s.CreateDelegation(ctx, store.Delegation{Organization: p[0], Supplier: p[1]}); err != nil {
			t.Fatalf("CreateDelegation(%v): %v", p, err)
		}
	}
	if _, err := s.CreateDelegation(ctx, store.Delegation{Organization: "111111111", Supplier: "222222222"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate pair: err = %v, want %v", err, store.ErrAlreadyExists)
	}
	if _, err := s.Delegation(ctx, "444444444", "333333333"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown pair: err = %v, want %v", err, store.ErrNotFound)
	}
	if err := s.DeleteDelegation(ctx, "111111111", "333333333"); err != nil {
		t.Fatalf("DeleteDelegation: %v", err)
	}
	for _, p := range [][2]string{pairs[0], pairs[2]} {
		if d, err := s.Delegation(ctx, p[0], p[1]); err != nil || d.Organization != p[0] || d.Supplier != p[1] {
			t.Errorf("Delegation(%v) = %+v, %v", p, d, err)
		}
	}
	list, err := s.Delegations(ctx)
	if err != nil || len(list) != 2 || list[0].Organization != "111111111" || list[1].Organization != "444444444" {
		t.Errorf("Delegations = %+v, %v; want the two pairs in order", list, err)
	}
}

func runKind[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, open, k) })
	t.Run("List", func(t *testing.T) { testList(t, open, k) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, open, k) })
	t.Run("UpdateVersionMismatch", func(t *testing.T) { testUpdateVersionMismatch(t, open, k) })
	t.Run("DuplicateCreate", func(t *testing.T) { testDuplicateCreate(t, open, k) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, open, k) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open, k) })
	t.Run("RegistryVersion", func(t *testing.T) { testRegistryVersion(t, open, k) })
}

// mustCreate creates rec and fails the test on error.
func mustCreate[T any](t *testing.T, s store.Store, k kind[T], rec T) T {
	t.Helper()
	got, err := k.create(t.Context(), s, rec)
	if err != nil {
		t.Fatalf("Create%s(%q): %v", k.name, *k.key(&rec), err)
	}
	return got
}

// mustGet reads a record and fails the test on error.
func mustGet[T any](t *testing.T, s store.Store, k kind[T], key string) T {
	t.Helper()
	got, err := k.get(t.Context(), s, key)
	if err != nil {
		t.Fatalf("%s(%q): %v", k.name, key, err)
	}
	return got
}

// equalRecords reports whether two records are equal once their times are
// compared at Precision and nil and empty slices and maps are the same.
// Both records must have passed checkMeta.
func equalRecords[T any](k kind[T], a, b T) bool {
	for _, m := range []*store.Meta{k.meta(&a), k.meta(&b)} {
		m.CreatedAt = canonTime(m.CreatedAt)
		m.UpdatedAt = canonTime(m.UpdatedAt)
	}
	return reflect.DeepEqual(emptyToNil(a), emptyToNil(b))
}

// checkMeta checks the store's bookkeeping on a record it returned.
func checkMeta[T any](t *testing.T, k kind[T], rec T) {
	t.Helper()
	m := k.meta(&rec)
	checkStoreTime(t, "CreatedAt", m.CreatedAt)
	checkStoreTime(t, "UpdatedAt", m.UpdatedAt)
	if m.Version < 1 {
		t.Errorf("Version = %d, want at least 1", m.Version)
	}
}

func testCreateGet[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	var zero T
	tests := []struct {
		name string
		rec  T
	}{
		{"every field set", k.full("every-field")},
		{"zero values", func() T { r := zero; *k.key(&r) = "zero-values"; return r }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			in := tt.rec
			// The store owns Version and the timestamps: whatever the
			// caller puts there is ignored.
			m := k.meta(&in)
			m.Version = 42
			m.CreatedAt = time.Date(2001, 2, 3, 4, 5, 6, 7, time.FixedZone("X", 3600))
			m.UpdatedAt = time.Date(2002, 2, 3, 4, 5, 6, 7, time.UTC)

			before := time.Now()
			created, err := k.create(t.Context(), s, in)
			after := time.Now()
			if err != nil {
				t.Fatalf("Create%s: %v", k.name, err)
			}
			checkMeta(t, k, created)
			cm := k.meta(&created)
			if cm.Version != 1 {
				t.Errorf("Version = %d, want 1", cm.Version)
			}
			inWindow(t, "CreatedAt", cm.CreatedAt, before, after)
			if !cm.UpdatedAt.Equal(cm.CreatedAt) {
				t.Errorf("UpdatedAt = %v, want CreatedAt %v", cm.UpdatedAt, cm.CreatedAt)
			}

			// Apart from the store's bookkeeping, the record is what
			// the caller gave.
			want := tt.rec
			wm := k.meta(&want)
			wm.Version, wm.CreatedAt, wm.UpdatedAt = cm.Version, cm.CreatedAt, cm.UpdatedAt
			if !equalRecords(k, created, want) {
				t.Errorf("Create%s returned\n%+v\nwant\n%+v", k.name, created, want)
			}

			got := mustGet(t, s, k, *k.key(&in))
			checkMeta(t, k, got)
			if !equalRecords(k, got, created) {
				t.Errorf("%s returned\n%+v\nwant what Create returned\n%+v", k.name, got, created)
			}
		})
	}
}

func testList[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	got, err := k.list(t.Context(), s)
	if err != nil {
		t.Fatalf("list of an empty store: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("list of an empty store returned %d records", len(got))
	}

	// Byte order puts upper case before lower case and "-" before digits,
	// unlike the collations of most locales.
	keys := []string{"b", "a0", "B", "a", "A-1", "a-1", "Z"}
	created := map[string]T{}
	for _, key := range keys {
		created[key] = mustCreate(t, s, k, k.full(key))
	}
	got, err = k.list(t.Context(), s)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var gotKeys []string
	for i := range got {
		gotKeys = append(gotKeys, *k.key(&got[i]))
	}
	wantKeys := slices.Sorted(slices.Values(keys))
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("list returned keys %q, want %q", gotKeys, wantKeys)
	}
	for _, rec := range got {
		checkMeta(t, k, rec)
		if want := created[*k.key(&rec)]; !equalRecords(k, rec, want) {
			t.Errorf("list returned\n%+v\nwant what Create returned\n%+v", rec, want)
		}
	}
}

func testUpdate[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	prev := mustCreate(t, s, k, k.full("updated"))
	created := *k.meta(&prev)

	// Two updates in a row: each bumps Version by one and moves UpdatedAt
	// forward, even when they come within the clock's resolution.
	for i := range 2 {
		in := prev
		k.change(&in)
		// The caller's timestamps are ignored.
		k.meta(&in).CreatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		k.meta(&in).UpdatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

		before := time.Now()
		updated, err := k.update(t.Context(), s, in)
		after := time.Now()
		if err != nil {
			t.Fatalf("update %d: Update%s: %v", i+1, k.name, err)
		}
		checkMeta(t, k, updated)
		um, pm := k.meta(&updated), k.meta(&prev)
		if um.Version != pm.Version+1 {
			t.Errorf("update %d: Version = %d, want %d", i+1, um.Version, pm.Version+1)
		}
		if !um.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("update %d: CreatedAt = %v, want it kept at %v", i+1, um.CreatedAt, created.CreatedAt)
		}
		if !um.UpdatedAt.After(pm.UpdatedAt) {
			t.Errorf("update %d: UpdatedAt = %v, want after %v", i+1, um.UpdatedAt, pm.UpdatedAt)
		}
		// UpdatedAt is the clock at the update unless that would not
		// move it forward.
		if um.UpdatedAt.After(pm.UpdatedAt.Add(Precision)) {
			inWindow(t, "UpdatedAt", um.UpdatedAt, before, after)
		}

		want := in
		wm := k.meta(&want)
		wm.Version, wm.CreatedAt, wm.UpdatedAt = um.Version, um.CreatedAt, um.UpdatedAt
		if !equalRecords(k, updated, want) {
			t.Errorf("update %d: Update%s returned\n%+v\nwant\n%+v", i+1, k.name, updated, want)
		}
		got := mustGet(t, s, k, *k.key(&in))
		if !equalRecords(k, got, updated) {
			t.Errorf("update %d: %s returned\n%+v\nwant what Update returned\n%+v", i+1, k.name, got, updated)
		}
		prev = updated
	}
}

func testUpdateVersionMismatch[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	tests := []struct {
		name    string
		version int64 // the stored record has Version 2
		wantErr error
	}{
		{"stale", 1, store.ErrConflict},
		{"ahead", 3, store.ErrConflict},
		{"zero", 0, store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			rec := mustCreate(t, s, k, k.full("conflict"))
			stored, err := k.update(t.Context(), s, rec)
			if err != nil {
				t.Fatalf("Update%s: %v", k.name, err)
			}

			in := stored
			k.change(&in)
			k.meta(&in).Version = tt.version
			if _, err := k.update(t.Context(), s, in); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Update%s with Version %d: err = %v, want %v", k.name, tt.version, err, tt.wantErr)
			}
			if got := mustGet(t, s, k, *k.key(&in)); !equalRecords(k, got, stored) {
				t.Errorf("after a refused update %s returned\n%+v\nwant it unchanged\n%+v", k.name, got, stored)
			}
		})
	}
}

func testDuplicateCreate[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	first := mustCreate(t, s, k, k.full("twice"))
	second := k.full("twice")
	k.change(&second)
	if _, err := k.create(t.Context(), s, second); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second Create%s: err = %v, want %v", k.name, err, store.ErrAlreadyExists)
	}
	if got := mustGet(t, s, k, "twice"); !equalRecords(k, got, first) {
		t.Errorf("after a refused create %s returned\n%+v\nwant the first record\n%+v", k.name, got, first)
	}
}

func testMissing[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	tests := []struct {
		name    string
		call    func(ctx context.Context, s store.Store) error
		wantErr error
	}{
		{"get", func(ctx context.Context, s store.Store) error {
			_, err := k.get(ctx, s, "missing")
			return err
		}, store.ErrNotFound},
		{"update", func(ctx context.Context, s store.Store) error {
			rec := k.full("missing")
			k.meta(&rec).Version = 1
			_, err := k.update(ctx, s, rec)
			return err
		}, store.ErrNotFound},
		{"delete", func(ctx context.Context, s store.Store) error {
			return k.delete(ctx, s, "missing")
		}, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			// A record under another key must not be found instead.
			mustCreate(t, s, k, k.full("present"))
			if err := tt.call(t.Context(), s); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if _, err := k.get(t.Context(), s, "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("afterwards %s(missing): err = %v, want %v", k.name, err, store.ErrNotFound)
			}
		})
	}
}

func testDelete[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	mustCreate(t, s, k, k.full("deleted"))
	kept := mustCreate(t, s, k, k.full("kept"))
	if err := k.delete(t.Context(), s, "deleted"); err != nil {
		t.Fatalf("Delete%s: %v", k.name, err)
	}
	if _, err := k.get(t.Context(), s, "deleted"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s after delete: err = %v, want %v", k.name, err, store.ErrNotFound)
	}
	if err := k.delete(t.Context(), s, "deleted"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete%s: err = %v, want %v", k.name, err, store.ErrNotFound)
	}
	all, err := k.list(t.Context(), s)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 1 || !equalRecords(k, all[0], kept) {
		t.Errorf("list after delete = %+v, want only %+v", all, kept)
	}
	// The key is free again and starts over at Version 1.
	again := mustCreate(t, s, k, k.full("deleted"))
	if v := k.meta(&again).Version; v != 1 {
		t.Errorf("re-created record has Version %d, want 1", v)
	}
}

// testRegistryVersion runs a sequence of calls on one store and checks after
// each whether RegistryVersion changed: it must after every successful
// write and must not after a read or a refused write.
func testRegistryVersion[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	var current T // the stored record, kept up to date by the steps
	steps := []struct {
		name       string
		call       func(ctx context.Context) error
		wantChange bool
	}{
		{"create", func(ctx context.Context) (err error) {
			current, err = k.create(ctx, s, k.full("versioned"))
			return err
		}, true},
		{"get", func(ctx context.Context) error {
			_, err := k.get(ctx, s, "versioned")
			return err
		}, false},
		{"list", func(ctx context.Context) error {
			_, err := k.list(ctx, s)
			return err
		}, false},
		{"update", func(ctx context.Context) (err error) {
			in := current
			k.change(&in)
			current, err = k.update(ctx, s, in)
			return err
		}, true},
		{"update unchanged", func(ctx context.Context) (err error) {
			current, err = k.update(ctx, s, current)
			return err
		}, true},
		{"refused: stale update", func(ctx context.Context) error {
			in := current
			k.meta(&in).Version--
			if _, err := k.update(ctx, s, in); !errors.Is(err, store.ErrConflict) {
				return errors.Join(errors.New("want ErrConflict"), err)
			}
			return nil
		}, false},
		{"refused: duplicate create", func(ctx context.Context) error {
			if _, err := k.create(ctx, s, k.full("versioned")); !errors.Is(err, store.ErrAlreadyExists) {
				return errors.Join(errors.New("want ErrAlreadyExists"), err)
			}
			return nil
		}, false},
		{"refused: update missing", func(ctx context.Context) error {
			rec := k.full("missing")
			k.meta(&rec).Version = 1
			if _, err := k.update(ctx, s, rec); !errors.Is(err, store.ErrNotFound) {
				return errors.Join(errors.New("want ErrNotFound"), err)
			}
			return nil
		}, false},
		{"refused: delete missing", func(ctx context.Context) error {
			if err := k.delete(ctx, s, "missing"); !errors.Is(err, store.ErrNotFound) {
				return errors.Join(errors.New("want ErrNotFound"), err)
			}
			return nil
		}, false},
		{"delete", func(ctx context.Context) error {
			return k.delete(ctx, s, "versioned")
		}, true},
	}
	seen := map[int64]string{}
	prev, err := s.RegistryVersion(t.Context())
	if err != nil {
		t.Fatalf("RegistryVersion: %v", err)
	}
	seen[prev] = "start"
	for _, step := range steps {
		if err := step.call(t.Context()); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		v, err := s.RegistryVersion(t.Context())
		if err != nil {
			t.Fatalf("RegistryVersion after %s: %v", step.name, err)
		}
		switch {
		case step.wantChange && v == prev:
			t.Errorf("RegistryVersion stayed %d after %s", v, step.name)
		case step.wantChange && seen[v] != "":
			// A server that loaded its snapshot at an earlier version
			// must not mistake the new state for it.
			t.Errorf("RegistryVersion after %s is %d, as it was after %s", step.name, v, seen[v])
		case !step.wantChange && v != prev:
			t.Errorf("RegistryVersion changed from %d to %d after %s", prev, v, step.name)
		}
		if step.wantChange {
			seen[v] = step.name
		}
		prev = v
	}
}

// testKindsAreSeparate checks that records of different kinds with the same
// key do not collide.
func testKindsAreSeparate(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	const key = "shared-key"
	mustCreate(t, s, apiKind, apiKind.full(key))
	mustCreate(t, s, organizationKind, organizationKind.full(key))
	mustCreate(t, s, clientSystemKind, clientSystemKind.full(key))
	mustCreate(t, s, clientKind, clientKind.full(key))

	if err := s.DeleteClientSystem(ctx, key); err != nil {
		t.Fatalf("DeleteClientSystem: %v", err)
	}
	if _, err := s.API(ctx, key); err != nil {
		t.Errorf("API after deleting a client system with its key: %v", err)
	}
	if _, err := s.Organization(ctx, key); err != nil {
		t.Errorf("Organisation after deleting a client system with its key: %v", err)
	}
	if _, err := s.Client(ctx, key); err != nil {
		t.Errorf("Client after deleting a client system with its key: %v", err)
	}
	for _, n := range []struct {
		name string
		list func() (int, error)
	}{
		{"APIs", func() (int, error) { l, err := s.APIs(ctx); return len(l), err }},
		{"Organisations", func() (int, error) { l, err := s.Organizations(ctx); return len(l), err }},
		{"Clients", func() (int, error) { l, err := s.Clients(ctx); return len(l), err }},
	} {
		if got, err := n.list(); err != nil || got != 1 {
			t.Errorf("%s returned %d records, %v; want 1", n.name, got, err)
		}
	}
}
