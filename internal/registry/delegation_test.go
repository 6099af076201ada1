package registry_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestSyncDelegations applies delegations from the file like the other
// records: created, left alone when unchanged, updated, disabled when the
// file drops them (a delegation left active would still let the supplier act
// for the organisation), and never taken over from the CLI.
func TestSyncDelegations(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	w := want(t)
	w.Delegations = []store.Delegation{
		{Organization: "310303038", Supplier: "310202029", AcceptedAPIs: []string{"nhn:deft", "e-helse:sfm.api"}},
		{Organization: "310404047", Supplier: "310202029"},
	}
	rep := mustSync(t, s, w)
	wantCreated := refs(store.DelegationKind.Name, "310303038:310202029", "310404047:310202029")
	if got := rep.Created[len(rep.Created)-2:]; !slices.Equal(got, wantCreated) {
		t.Fatalf("created %v, want the delegations %v last", rep.Created, wantCreated)
	}
	d, err := store.Get(ctx, s, store.DelegationKind, store.DelegationKey("310303038", "310202029"))
	if err != nil {
		t.Fatal(err)
	}
	if d.ManagedBy != store.ManagedByFile || d.Status != store.StatusActive || !d.Active() {
		t.Errorf("stored delegation = %+v, want file-managed and active", d)
	}

	// Reordered accepted APIs are no change.
	w.Delegations[0].AcceptedAPIs = []string{"e-helse:sfm.api", "nhn:deft"}
	v := version(t, s)
	if rep := mustSync(t, s, w); rep.Changed() || version(t, s) != v {
		t.Errorf("reordered APIs changed %v", rep)
	}

	w.Delegations[0].AcceptedAPIs = []string{"nhn:deft"}
	rep = mustSync(t, s, w)
	if !slices.Equal(rep.Updated, refs(store.DelegationKind.Name, "310303038:310202029")) {
		t.Errorf("update report %v", rep)
	}

	// Dropped from the file: disabled, not deleted.
	dropped := w
	dropped.Delegations = w.Delegations[:1]
	rep = mustSync(t, s, dropped)
	if !slices.Equal(rep.Disabled, refs(store.DelegationKind.Name, "310404047:310202029")) {
		t.Fatalf("removal report %v", rep)
	}
	d, err = store.Get(ctx, s, store.DelegationKind, store.DelegationKey("310404047", "310202029"))
	if err != nil || d.Active() {
		t.Errorf("dropped delegation = %+v, %v; want it kept, disabled", d, err)
	}

	// Made by the CLI: untouched, and the file may not declare it.
	cli := store.Delegation{Organization: "310303038", Supplier: "310404047"}
	if _, err := store.Create(ctx, s, store.DelegationKind, cli); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, s, dropped); rep.Changed() {
		t.Errorf("Sync touched a CLI delegation: %v", rep)
	}
	taken := dropped
	taken.Delegations = append(slices.Clone(dropped.Delegations), cli)
	if _, err := registry.Sync(ctx, s, taken); !errors.Is(err, registry.ErrNotFileManaged) {
		t.Errorf("taking over a CLI delegation: err = %v, want ErrNotFileManaged", err)
	}

	// The snapshot serves them, disabled ones included with their status.
	snap, err := registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		organization, supplier string
		wantFound, wantActive  bool
	}{
		{"file-managed", "310303038", "310202029", true, true},
		{"made by the CLI", "310303038", "310404047", true, true},
		{"disabled", "310404047", "310202029", true, false},
		{"reversed pair", "310202029", "310303038", false, false},
		{"unknown", "310900060", "310202029", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := snap.Delegation(tt.organization, tt.supplier)
			if ok != tt.wantFound || (ok && d.Active() != tt.wantActive) {
				t.Errorf("Delegation = %+v, %v; want found %v, active %v", d, ok, tt.wantFound, tt.wantActive)
			}
		})
	}
}
