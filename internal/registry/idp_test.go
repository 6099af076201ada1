package registry_test

import (
	"slices"
	"testing"

	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestSyncIdentityProviders follows identity providers from the file to
// the snapshot: created, updated, disabled when the file drops one, and
// enabled again when it comes back.
func TestSyncIdentityProviders(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	kind := store.IdentityProviderKind.Name
	testIdP := store.IdentityProvider{Name: "testidp-oidc", Type: store.IdentityProviderTestIdP, DisplayName: "Test login"}
	oidc := store.IdentityProvider{Name: "idporten", Type: store.IdentityProviderOIDC, DisplayName: "ID-porten", Status: store.StatusActive}

	rep := mustSync(t, s, registry.Registry{IdentityProviders: []store.IdentityProvider{testIdP, oidc}})
	if !slices.Equal(rep.Created, refs(kind, "testidp-oidc", "idporten")) || len(rep.Updated)+len(rep.Disabled) != 0 {
		t.Fatalf("first Sync: %v", rep)
	}
	snap, err := registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An empty status in the file means active.
	if p, ok := snap.IdentityProvider("testidp-oidc"); !ok || p.Status != store.StatusActive || p.Type != store.IdentityProviderTestIdP || p.ManagedBy != store.ManagedByFile {
		t.Errorf("snapshot identity provider = %+v, %v", p, ok)
	}

	oidc.DisplayName = "ID-porten (ny)"
	rep = mustSync(t, s, registry.Registry{IdentityProviders: []store.IdentityProvider{oidc}})
	if !slices.Equal(rep.Updated, refs(kind, "idporten")) || !slices.Equal(rep.Disabled, refs(kind, "testidp-oidc")) || len(rep.Created)+len(rep.Kept) != 0 {
		t.Fatalf("Sync without testidp-oidc: %v", rep)
	}
	if p, err := store.Get(ctx, s, store.IdentityProviderKind, "testidp-oidc"); err != nil || p.Status != store.StatusDisabled {
		t.Errorf("dropped identity provider = %+v, %v; want it disabled, not deleted", p, err)
	}

	rep = mustSync(t, s, registry.Registry{IdentityProviders: []store.IdentityProvider{testIdP, oidc}})
	if !slices.Equal(rep.Updated, refs(kind, "testidp-oidc")) || len(rep.Created)+len(rep.Disabled) != 0 {
		t.Fatalf("Sync with testidp-oidc back: %v", rep)
	}
	if rep := mustSync(t, s, registry.Registry{IdentityProviders: []store.IdentityProvider{testIdP, oidc}}); rep.Changed() {
		t.Errorf("Sync of an unchanged file changed %v", rep)
	}
}
