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

// kind is one registry kind with the sample records the generic registry
// tests use.
type kind[T any] struct {
	*store.Kind[T]
	// key is the field the tests set to give a record its key; for a
	// delegation the organisation, the supplier being left empty.
	key func(*T) *string
	// full returns a record with every field set to a non-zero value.
	full func(key string) T
	// change alters every non-key field of a record.
	change func(*T)
}

// registryKind is a kind[T] of any T.
type registryKind interface {
	name() string
	run(t *testing.T, open func(t *testing.T) store.Store)
	create(t *testing.T, s store.Store, key string)
	get(ctx context.Context, s store.Store, key string) error
	count(ctx context.Context, s store.Store) (int, error)
	delete(ctx context.Context, s store.Store, key string) error
}

// kinds lists every registry kind. A new kind adds its kind here.
var kinds = []registryKind{apiKind, organizationKind, clientSystemKind, clientKind, delegationKind, identityProviderKind, personKind, healthPersonnelKind, appliedConfigKind}

func runRegistry(t *testing.T, open func(t *testing.T) store.Store) {
	for _, k := range kinds {
		t.Run(k.name(), func(t *testing.T) { k.run(t, open) })
	}
	t.Run("DelegationPairs", func(t *testing.T) { testDelegationPairs(t, open) })
	t.Run("KindsAreSeparate", func(t *testing.T) { testKindsAreSeparate(t, open) })
	t.Run("EmptyKey", func(t *testing.T) { testEmptyKey(t, open) })
}

func (k kind[T]) name() string { return k.Name }

// storeKey is the store's key of the record whose key field is key.
func (k kind[T]) storeKey(key string) string {
	var rec T
	*k.key(&rec) = key
	return k.Key(&rec)
}

func (k kind[T]) create(t *testing.T, s store.Store, key string) { mustCreate(t, s, k, k.full(key)) }

func (k kind[T]) get(ctx context.Context, s store.Store, key string) error {
	_, err := store.Get(ctx, s, k.Kind, k.storeKey(key))
	return err
}

func (k kind[T]) count(ctx context.Context, s store.Store) (int, error) {
	l, err := store.List(ctx, s, k.Kind)
	return len(l), err
}

func (k kind[T]) delete(ctx context.Context, s store.Store, key string) error {
	return store.Delete(ctx, s, k.Kind, k.storeKey(key))
}

var apiKind = kind[store.API]{
	Kind: store.APIKind,
	key:  func(r *store.API) *string { return &r.Audience },
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
	Kind: store.OrganizationKind,
	key:  func(r *store.Organization) *string { return &r.Number },
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
	Kind: store.ClientSystemKind,
	key:  func(r *store.ClientSystem) *string { return &r.ID },
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
	Kind: store.ClientKind,
	key:  func(r *store.Client) *string { return &r.ID },
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
	Kind: store.DelegationKind,
	key:  func(r *store.Delegation) *string { return &r.Organization },
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

var identityProviderKind = kind[store.IdentityProvider]{
	Kind: store.IdentityProviderKind,
	key:  func(r *store.IdentityProvider) *string { return &r.Name },
	full: func(key string) store.IdentityProvider {
		return store.IdentityProvider{
			Name:        key,
			Type:        store.IdentityProviderOIDC,
			DisplayName: "ID-porten – innlogging",
			Status:      store.StatusActive,
			Meta:        store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.IdentityProvider) {
		r.Type = store.IdentityProviderTestIdP
		r.DisplayName += " (changed)"
		r.Status = store.StatusDisabled
		r.ManagedBy = ""
	},
}

var personKind = kind[store.Person]{
	Kind: store.PersonKind,
	key:  func(r *store.Person) *string { return &r.PID },
	full: func(key string) store.Person {
		return store.Person{
			PID:        key,
			GivenName:  "Kvart",
			MiddleName: "Åse",
			FamilyName: "Grevling",
			Meta:       store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.Person) {
		r.GivenName += " (changed)"
		r.MiddleName = ""
		r.FamilyName = "Ærlig"
		r.ManagedBy = ""
	},
}

var healthPersonnelKind = kind[store.HealthPersonnel]{
	Kind: store.HealthPersonnelKind,
	key:  func(r *store.HealthPersonnel) *string { return &r.Number },
	full: func(key string) store.HealthPersonnel {
		return store.HealthPersonnel{
			Number: key,
			PID:    "06828399789",
			Approvals: []store.HPRApproval{{
				Profession:        "LE",
				Authorization:     store.HPRCode{Value: "1", Description: "Autorisasjon"},
				RequisitionRights: []store.HPRCode{{Value: "1", Description: "Full rekvisisjonsrett"}},
				Specialities:      []store.HPRCode{{Value: "1", Description: "Allmennmedisin"}},
			}},
			Status: store.StatusActive,
			Meta:   store.Meta{ManagedBy: store.ManagedByFile},
		}
	},
	change: func(r *store.HealthPersonnel) {
		r.PID = "17056600574"
		r.Approvals = append(r.Approvals, store.HPRApproval{Profession: "SP",
			Authorization: store.HPRCode{Value: "1", Description: "Autorisasjon"}})
		r.Status = store.StatusDisabled
		r.ManagedBy = ""
	},
}

var appliedConfigKind = kind[store.AppliedConfig]{
	Kind: store.AppliedConfigKind,
	key:  func(r *store.AppliedConfig) *string { return &r.Name },
	full: func(key string) store.AppliedConfig {
		return store.AppliedConfig{
			Name:    key,
			Digest:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Files:   []store.FileDigest{{Path: "/etc/tillit/persons.csv", Digest: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}},
			Env:     []string{"IDPORTEN_CLIENT_SECRET"},
			Present: []string{"/etc/tillit/idporten.secret"},
			Version: 42,
		}
	},
	change: func(r *store.AppliedConfig) {
		r.Digest = "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"
		r.Files = nil
		r.Env = append(r.Env, "OTHER")
		r.Present = nil
		r.Version++
	},
}

// testDelegationPairs checks that a delegation is keyed by both numbers:
// one organisation may delegate to several suppliers and the reverse, and
// Delegations lists them by organisation, then supplier.
func testDelegationPairs(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	k := store.DelegationKind
	pairs := [][2]string{{"111111111", "222222222"}, {"111111111", "333333333"}, {"444444444", "222222222"}}
	for _, p := range pairs {
		if _, err := store.Create(ctx, s, k, store.Delegation{Organization: p[0], Supplier: p[1]}); err != nil {
			t.Fatalf("create delegation %v: %v", p, err)
		}
	}
	if _, err := store.Create(ctx, s, k, store.Delegation{Organization: "111111111", Supplier: "222222222"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate pair: err = %v, want %v", err, store.ErrAlreadyExists)
	}
	if _, err := store.Get(ctx, s, k, store.DelegationKey("444444444", "333333333")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown pair: err = %v, want %v", err, store.ErrNotFound)
	}
	if err := store.Delete(ctx, s, k, store.DelegationKey("111111111", "333333333")); err != nil {
		t.Fatalf("delete delegation: %v", err)
	}
	for _, p := range [][2]string{pairs[0], pairs[2]} {
		if d, err := store.Get(ctx, s, k, store.DelegationKey(p[0], p[1])); err != nil || d.Organization != p[0] || d.Supplier != p[1] {
			t.Errorf("get delegation %v = %+v, %v", p, d, err)
		}
	}
	list, err := store.List(ctx, s, k)
	if err != nil || len(list) != 2 || list[0].Organization != "111111111" || list[1].Organization != "444444444" {
		t.Errorf("list delegations = %+v, %v; want the two pairs in order", list, err)
	}
}

func (k kind[T]) run(t *testing.T, open func(t *testing.T) store.Store) {
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
	got, err := store.Create(t.Context(), s, k.Kind, rec)
	if err != nil {
		t.Fatalf("create %s %q: %v", k.Name, *k.key(&rec), err)
	}
	return got
}

// mustGet reads a record and fails the test on error.
func mustGet[T any](t *testing.T, s store.Store, k kind[T], key string) T {
	t.Helper()
	got, err := store.Get(t.Context(), s, k.Kind, k.storeKey(key))
	if err != nil {
		t.Fatalf("get %s %q: %v", k.Name, key, err)
	}
	return got
}

// equalRecords reports whether two records are equal once their times are
// compared at Precision and nil and empty slices and maps are the same.
// Both records must have passed checkMeta.
func equalRecords[T any](k kind[T], a, b T) bool {
	for _, m := range []*store.Meta{k.Meta(&a), k.Meta(&b)} {
		m.CreatedAt = canonTime(m.CreatedAt)
		m.UpdatedAt = canonTime(m.UpdatedAt)
	}
	return reflect.DeepEqual(emptyToNil(a), emptyToNil(b))
}

// checkMeta checks the store's bookkeeping on a record it returned.
func checkMeta[T any](t *testing.T, k kind[T], rec T) {
	t.Helper()
	m := k.Meta(&rec)
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
			m := k.Meta(&in)
			m.Version = 42
			m.CreatedAt = time.Date(2001, 2, 3, 4, 5, 6, 7, time.FixedZone("X", 3600))
			m.UpdatedAt = time.Date(2002, 2, 3, 4, 5, 6, 7, time.UTC)

			before := time.Now()
			created, err := store.Create(t.Context(), s, k.Kind, in)
			after := time.Now()
			if err != nil {
				t.Fatalf("create %s: %v", k.Name, err)
			}
			checkMeta(t, k, created)
			cm := k.Meta(&created)
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
			wm := k.Meta(&want)
			wm.Version, wm.CreatedAt, wm.UpdatedAt = cm.Version, cm.CreatedAt, cm.UpdatedAt
			if !equalRecords(k, created, want) {
				t.Errorf("create %s returned\n%+v\nwant\n%+v", k.Name, created, want)
			}

			got := mustGet(t, s, k, *k.key(&in))
			checkMeta(t, k, got)
			if !equalRecords(k, got, created) {
				t.Errorf("get %s returned\n%+v\nwant what Create returned\n%+v", k.Name, got, created)
			}
		})
	}
}

func testList[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	got, err := store.List(t.Context(), s, k.Kind)
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
	got, err = store.List(t.Context(), s, k.Kind)
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
	created := *k.Meta(&prev)

	// Two updates in a row: each bumps Version by one and moves UpdatedAt
	// forward, even when they come within the clock's resolution.
	for i := range 2 {
		in := prev
		k.change(&in)
		// The caller's timestamps are ignored.
		k.Meta(&in).CreatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		k.Meta(&in).UpdatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

		before := time.Now()
		updated, err := store.Update(t.Context(), s, k.Kind, in)
		after := time.Now()
		if err != nil {
			t.Fatalf("update %d: update %s: %v", i+1, k.Name, err)
		}
		checkMeta(t, k, updated)
		um, pm := k.Meta(&updated), k.Meta(&prev)
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
		wm := k.Meta(&want)
		wm.Version, wm.CreatedAt, wm.UpdatedAt = um.Version, um.CreatedAt, um.UpdatedAt
		if !equalRecords(k, updated, want) {
			t.Errorf("update %d: update %s returned\n%+v\nwant\n%+v", i+1, k.Name, updated, want)
		}
		got := mustGet(t, s, k, *k.key(&in))
		if !equalRecords(k, got, updated) {
			t.Errorf("update %d: get %s returned\n%+v\nwant what Update returned\n%+v", i+1, k.Name, got, updated)
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
			stored, err := store.Update(t.Context(), s, k.Kind, rec)
			if err != nil {
				t.Fatalf("update %s: %v", k.Name, err)
			}

			in := stored
			k.change(&in)
			k.Meta(&in).Version = tt.version
			if _, err := store.Update(t.Context(), s, k.Kind, in); !errors.Is(err, tt.wantErr) {
				t.Fatalf("update %s with Version %d: err = %v, want %v", k.Name, tt.version, err, tt.wantErr)
			}
			if got := mustGet(t, s, k, *k.key(&in)); !equalRecords(k, got, stored) {
				t.Errorf("after a refused update get %s returned\n%+v\nwant it unchanged\n%+v", k.Name, got, stored)
			}
		})
	}
}

func testDuplicateCreate[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	first := mustCreate(t, s, k, k.full("twice"))
	second := k.full("twice")
	k.change(&second)
	if _, err := store.Create(t.Context(), s, k.Kind, second); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second create %s: err = %v, want %v", k.Name, err, store.ErrAlreadyExists)
	}
	if got := mustGet(t, s, k, "twice"); !equalRecords(k, got, first) {
		t.Errorf("after a refused create get %s returned\n%+v\nwant the first record\n%+v", k.Name, got, first)
	}
}

func testMissing[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	tests := []struct {
		name    string
		call    func(ctx context.Context, s store.Store) error
		wantErr error
	}{
		{"get", func(ctx context.Context, s store.Store) error {
			_, err := store.Get(ctx, s, k.Kind, k.storeKey("missing"))
			return err
		}, store.ErrNotFound},
		{"update", func(ctx context.Context, s store.Store) error {
			rec := k.full("missing")
			k.Meta(&rec).Version = 1
			_, err := store.Update(ctx, s, k.Kind, rec)
			return err
		}, store.ErrNotFound},
		{"delete", func(ctx context.Context, s store.Store) error {
			return store.Delete(ctx, s, k.Kind, k.storeKey("missing"))
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
			if _, err := store.Get(t.Context(), s, k.Kind, k.storeKey("missing")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("afterwards get %s \"missing\": err = %v, want %v", k.Name, err, store.ErrNotFound)
			}
		})
	}
}

func testDelete[T any](t *testing.T, open func(t *testing.T) store.Store, k kind[T]) {
	s := open(t)
	mustCreate(t, s, k, k.full("deleted"))
	kept := mustCreate(t, s, k, k.full("kept"))
	if err := store.Delete(t.Context(), s, k.Kind, k.storeKey("deleted")); err != nil {
		t.Fatalf("delete %s: %v", k.Name, err)
	}
	if _, err := store.Get(t.Context(), s, k.Kind, k.storeKey("deleted")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get %s after delete: err = %v, want %v", k.Name, err, store.ErrNotFound)
	}
	if err := store.Delete(t.Context(), s, k.Kind, k.storeKey("deleted")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete %s: err = %v, want %v", k.Name, err, store.ErrNotFound)
	}
	all, err := store.List(t.Context(), s, k.Kind)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 1 || !equalRecords(k, all[0], kept) {
		t.Errorf("list after delete = %+v, want only %+v", all, kept)
	}
	// The key is free again and starts over at Version 1.
	again := mustCreate(t, s, k, k.full("deleted"))
	if v := k.Meta(&again).Version; v != 1 {
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
			current, err = store.Create(ctx, s, k.Kind, k.full("versioned"))
			return err
		}, true},
		{"get", func(ctx context.Context) error {
			_, err := store.Get(ctx, s, k.Kind, k.storeKey("versioned"))
			return err
		}, false},
		{"list", func(ctx context.Context) error {
			_, err := store.List(ctx, s, k.Kind)
			return err
		}, false},
		{"update", func(ctx context.Context) (err error) {
			in := current
			k.change(&in)
			current, err = store.Update(ctx, s, k.Kind, in)
			return err
		}, true},
		{"update unchanged", func(ctx context.Context) (err error) {
			current, err = store.Update(ctx, s, k.Kind, current)
			return err
		}, true},
		{"refused: stale update", func(ctx context.Context) error {
			in := current
			k.Meta(&in).Version--
			if _, err := store.Update(ctx, s, k.Kind, in); !errors.Is(err, store.ErrConflict) {
				return errors.Join(errors.New("want ErrConflict"), err)
			}
			return nil
		}, false},
		{"refused: duplicate create", func(ctx context.Context) error {
			if _, err := store.Create(ctx, s, k.Kind, k.full("versioned")); !errors.Is(err, store.ErrAlreadyExists) {
				return errors.Join(errors.New("want ErrAlreadyExists"), err)
			}
			return nil
		}, false},
		{"refused: update missing", func(ctx context.Context) error {
			rec := k.full("missing")
			k.Meta(&rec).Version = 1
			if _, err := store.Update(ctx, s, k.Kind, rec); !errors.Is(err, store.ErrNotFound) {
				return errors.Join(errors.New("want ErrNotFound"), err)
			}
			return nil
		}, false},
		{"refused: delete missing", func(ctx context.Context) error {
			if err := store.Delete(ctx, s, k.Kind, k.storeKey("missing")); !errors.Is(err, store.ErrNotFound) {
				return errors.Join(errors.New("want ErrNotFound"), err)
			}
			return nil
		}, false},
		{"delete", func(ctx context.Context) error {
			return store.Delete(ctx, s, k.Kind, k.storeKey("versioned"))
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
	for _, k := range kinds {
		k.create(t, s, key)
	}
	if err := clientSystemKind.delete(ctx, s, key); err != nil {
		t.Fatalf("delete client system: %v", err)
	}
	if err := clientSystemKind.get(ctx, s, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("client system after delete: err = %v, want %v", err, store.ErrNotFound)
	}
	for _, k := range kinds {
		if k.name() == clientSystemKind.Name {
			continue
		}
		if err := k.get(ctx, s, key); err != nil {
			t.Errorf("%s after deleting a client system with its key: %v", k.name(), err)
		}
		if got, err := k.count(ctx, s); err != nil || got != 1 {
			t.Errorf("list %s returned %d records, %v; want 1", k.name(), got, err)
		}
	}
}

// testEmptyKey checks that no record is stored under an empty kind or key,
// which no typed call could read back by name.
func testEmptyKey(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		rec  store.Record
	}{
		{"empty key", store.Record{Kind: store.APIKind.Name, Doc: "{}"}},
		{"empty kind", store.Record{Key: "nhn:deft", Doc: "{}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			before, err := s.RegistryVersion(t.Context())
			if err != nil {
				t.Fatalf("RegistryVersion: %v", err)
			}
			if _, err := s.CreateRecord(t.Context(), tt.rec); err == nil {
				t.Fatalf("CreateRecord(%+v) succeeded", tt.rec)
			}
			if _, err := s.Record(t.Context(), tt.rec.Kind, tt.rec.Key); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Record after the refused create: err = %v, want %v", err, store.ErrNotFound)
			}
			if after, err := s.RegistryVersion(t.Context()); err != nil || after != before {
				t.Errorf("RegistryVersion = %d, %v; want %d (unchanged)", after, err, before)
			}
		})
	}
}
