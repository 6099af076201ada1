package demo

import (
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/store"
)

func TestPopulation(t *testing.T) {
	people := Population()
	if len(people) != PopulationSize {
		t.Fatalf("%d persons, want %d", len(people), PopulationSize)
	}
	if !reflect.DeepEqual(people, Population()) {
		t.Fatal("Population differs between calls")
	}
	seen := map[string]bool{}
	for i, p := range people {
		pid, err := helseid.ParsePID(p.PID)
		if err != nil || !pid.Synthetic || pid.DNumber {
			t.Errorf("person %d: pid %s: %+v, %v; want a synthetic fødselsnummer", i, p.PID, pid, err)
		}
		if seen[p.PID] {
			t.Errorf("person %d: pid %s twice", i, p.PID)
		}
		seen[p.PID] = true
		if p.GivenName == "" || p.FamilyName == "" {
			t.Errorf("person %d: %+v lacks a name", i, p)
		}
	}
	// Guides and tests may name a person: the population never changes.
	for i, want := range map[int]Person{
		0:   {PID: "03814000086", GivenName: "Anne", FamilyName: "Hansen"},
		299: {PID: "16829806308", GivenName: "John", MiddleName: "Bøe", FamilyName: "Jenssen"},
	} {
		if people[i] != want {
			t.Errorf("person %d = %+v, want %+v", i, people[i], want)
		}
	}
}

// TestPrepareLoads: the dev configuration, with its population files,
// loads as a test environment and declares every person and the health
// personnel among them.
func TestPrepareLoads(t *testing.T) {
	t.Setenv(config.EnvKeyEncryptionKey, "")
	t.Setenv(config.EnvStorage, "")
	s, err := Prepare(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseWith(s.ConfigPath, data, config.Overrides{Dev: true})
	if err != nil {
		t.Fatalf("the dev configuration does not load: %v", err)
	}
	if !cfg.Test() {
		t.Error("the dev configuration is not a test environment")
	}
	r, err := cfg.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Persons) != PopulationSize || len(r.HealthPersonnel) != len(DevHealthPersonnel) {
		t.Fatalf("%d persons and %d HPR entries, want %d and %d", len(r.Persons), len(r.HealthPersonnel), PopulationSize, len(DevHealthPersonnel))
	}
	pids := map[string]store.Person{}
	for _, p := range r.Persons {
		pids[p.PID] = p
	}
	professions := map[string]int{}
	for _, h := range r.HealthPersonnel {
		if _, ok := pids[h.PID]; !ok || h.Status != store.StatusActive {
			t.Errorf("HPR %s: pid %s is not a person of the population, or the entry is %s", h.Number, h.PID, h.Status)
		}
		professions[h.Approvals[0].Profession]++
	}
	if professions["LE"] == 0 || professions["SP"] == 0 {
		t.Errorf("professions = %v, want doctors and nurses", professions)
	}
	// examples/epj's login client, whose person tokens SFM may exchange.
	var epj *store.Client
	for i := range r.Clients {
		if r.Clients[i].ID == EPJClientID {
			epj = &r.Clients[i]
		}
	}
	if epj == nil || !slices.Contains(epj.ExchangeActors, SFMAPIClientID) || !slices.Contains(epj.GrantTypes, "authorization_code") ||
		!slices.Contains(epj.PostLogoutRedirectURIs, EPJURL+"/") {
		t.Errorf("client %s = %+v, want a login client whose tokens %s may exchange", EPJClientID, epj, SFMAPIClientID)
	}
	if len(r.IdentityProviders) != 1 || r.IdentityProviders[0].Type != store.IdentityProviderTestIdP {
		t.Errorf("identity providers = %+v, want the TestIDP", r.IdentityProviders)
	}
}
