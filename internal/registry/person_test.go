package registry_test

import (
	"slices"
	"testing"

	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestSyncPersons: persons from the file are created and updated; one the
// file drops is kept (a name grants nothing), and persons stay out of the
// snapshot.
func TestSyncPersons(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	kind := store.PersonKind.Name
	kvart := store.Person{PID: "06828399789", GivenName: "Kvart", FamilyName: "Grevling"}
	ola := store.Person{PID: "17056600574", GivenName: "Ola", MiddleName: "Åge", FamilyName: "Nordmann"}

	rep := mustSync(t, s, registry.Registry{Persons: []store.Person{kvart, ola}})
	if !slices.Equal(rep.Created, refs(kind, "06828399789", "17056600574")) {
		t.Fatalf("first Sync: %v", rep)
	}
	ola.FamilyName = "Normann"
	rep = mustSync(t, s, registry.Registry{Persons: []store.Person{ola}})
	if !slices.Equal(rep.Updated, refs(kind, "17056600574")) || !slices.Equal(rep.Kept, refs(kind, "06828399789")) || len(rep.Disabled) != 0 {
		t.Fatalf("Sync without Kvart: %v", rep)
	}
	if p, err := store.Get(ctx, s, store.PersonKind, "06828399789"); err != nil || p.GivenName != "Kvart" {
		t.Errorf("dropped person = %+v, %v; want it kept", p, err)
	}
	if p, err := store.Get(ctx, s, store.PersonKind, "17056600574"); err != nil || p.FamilyName != "Normann" {
		t.Errorf("updated person = %+v, %v", p, err)
	}
}

// TestSyncHealthPersonnel follows HPR entries from the file to the
// snapshot, where a login finds them by pid: a dropped entry is disabled
// and no longer found by pid.
func TestSyncHealthPersonnel(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	kind := store.HealthPersonnelKind.Name
	doctor := store.HealthPersonnel{Number: "565505933", PID: "06828399789", Status: store.StatusActive,
		Approvals: []store.HPRApproval{{Profession: "LE", Authorization: store.HPRCode{Value: "1", Description: "Autorisasjon"}}}}
	nurse := store.HealthPersonnel{Number: "431001110", PID: "17056600574", Status: store.StatusActive,
		Approvals: []store.HPRApproval{{Profession: "SP", Authorization: store.HPRCode{Value: "1", Description: "Autorisasjon"}}}}

	mustSync(t, s, registry.Registry{HealthPersonnel: []store.HealthPersonnel{doctor, nurse}})
	snap, err := registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := snap.HealthPersonnelByPID("06828399789"); !ok || h.Number != "565505933" || h.Approvals[0].Profession != "LE" {
		t.Errorf("doctor by pid = %+v, %v", h, ok)
	}
	if _, ok := snap.HealthPersonnelByPID("01010112345"); ok {
		t.Error("a pid without an entry was found")
	}

	rep := mustSync(t, s, registry.Registry{HealthPersonnel: []store.HealthPersonnel{nurse}})
	if !slices.Equal(rep.Disabled, refs(kind, "565505933")) || rep.Changed() && len(rep.Updated)+len(rep.Created) != 0 {
		t.Fatalf("Sync without the doctor: %v", rep)
	}
	snap, err = registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := snap.HealthPersonnelByPID("06828399789"); ok {
		t.Errorf("a disabled entry is found by pid: %+v", h)
	}
	if h, ok := snap.HealthPersonnel("565505933"); !ok || h.Status != store.StatusDisabled {
		t.Errorf("disabled entry by number = %+v, %v", h, ok)
	}
	if h, ok := snap.HealthPersonnelByPID("17056600574"); !ok || h.Number != "431001110" {
		t.Errorf("nurse by pid = %+v, %v", h, ok)
	}
	if rep := mustSync(t, s, registry.Registry{HealthPersonnel: []store.HealthPersonnel{nurse}}); rep.Changed() {
		t.Errorf("Sync of an unchanged file changed %v", rep)
	}
}
