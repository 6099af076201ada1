package store_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// TestStoredNames pins the kind names: they are the kind column of every
// stored record, so a new name would hide a database's records.
func TestStoredNames(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"api", store.APIKind.Name, "api"},
		{"organisation", store.OrganizationKind.Name, "organisation"},
		{"client system", store.ClientSystemKind.Name, "client system"},
		{"client", store.ClientKind.Name, "client"},
		{"delegation", store.DelegationKind.Name, "delegation"},
		{"identity provider", store.IdentityProviderKind.Name, "identity provider"},
		{"person", store.PersonKind.Name, "person"},
		{"health personnel", store.HealthPersonnelKind.Name, "health personnel"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s kind is named %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	d := store.Delegation{Organization: "994598759", Supplier: "912345678"}
	if got, want := store.DelegationKind.Key(&d), "994598759\t912345678"; got != want {
		t.Errorf("delegation key = %q, want %q", got, want)
	}
}

// TestStoredDocuments reads documents as databases hold them, and checks
// that the same record is written back byte for byte: existing databases
// must read as before, including the JSON names that keep an older
// spelling ("Organisation").
func TestStoredDocuments(t *testing.T) {
	meta := store.Meta{ManagedBy: store.ManagedByFile, Version: 3,
		CreatedAt: time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2031, 5, 18, 10, 0, 0, 0, time.UTC)}
	client := store.Client{ID: "c1", Name: "Legekontoret", System: "sys", Tenancy: store.SingleTenant,
		Organization: "994598759", ChildOrganizations: []string{"912345678"}, JWKS: []byte(`{"keys":[]}`),
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"nhn:deft/api"},
		Claims: map[string]string{"nhn:sfm:journal-id": "j7"}, Status: store.StatusActive, RequireDPoP: true,
		AccessTokenLifetime: 90 * time.Second, ExchangeActors: []string{"sfm-actor"}, RefreshTokenLifetime: time.Hour,
		Meta: meta}
	const clientDoc = `{"AccessTokenLifetime":90000000000,"ChildOrganisations":["912345678"],"Claims":{"nhn:sfm:journal-id":"j7"},"ExchangeActors":["sfm-actor"],"GrantTypes":["client_credentials"],"ID":"c1","JWKS":"eyJrZXlzIjpbXX0=","Name":"Legekontoret","Organisation":"994598759","RefreshTokenLifetime":3600000000000,"RequireDPoP":true,"Scopes":["nhn:deft/api"],"Status":"active","System":"sys","Tenancy":"single-tenant"}`
	delegation := store.Delegation{Organization: "994598759", Supplier: "912345678",
		AcceptedAPIs: []string{"nhn:deft"}, Status: store.StatusActive, Meta: meta}
	const delegationDoc = `{"AcceptedAPIs":["nhn:deft"],"Organisation":"994598759","Status":"active","Supplier":"912345678"}`

	checkDocument(t, store.ClientKind, clientDoc, meta, client)
	checkDocument(t, store.DelegationKind, delegationDoc, meta, delegation)
}

func checkDocument[T any](t *testing.T, k *store.Kind[T], doc string, meta store.Meta, want T) {
	t.Helper()
	got, err := k.Decode(doc, meta)
	if err != nil {
		t.Fatalf("decode %s: %v", k.Name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decode %s:\n%+v\nwant\n%+v", k.Name, got, want)
	}
	again, err := k.Document(want)
	if err != nil {
		t.Fatalf("encode %s: %v", k.Name, err)
	}
	if again != doc {
		t.Errorf("encode %s:\n%s\nwant\n%s", k.Name, again, doc)
	}
}

// TestCanonLeavesRecordAlone checks that comparing a record does not sort
// the lists it shares with its caller.
func TestCanonLeavesRecordAlone(t *testing.T) {
	scopes := []string{"b", "a"}
	jwks := []byte(`{ "keys": [] }`)
	c := store.Client{ID: "c1", Scopes: scopes, JWKS: jwks, Claims: map[string]string{}, Meta: store.Meta{Version: 2}}
	canon := store.ClientKind.Canon(c)
	if !slices.Equal(canon.Scopes, []string{"a", "b"}) || string(canon.JWKS) != `{"keys":[]}` || canon.Claims != nil || canon.Version != 0 {
		t.Errorf("Canon = %+v, want sorted scopes, compact JWKS, nil claims and no Meta", canon)
	}
	if !slices.Equal(scopes, []string{"b", "a"}) || string(jwks) != `{ "keys": [] }` || c.Version != 2 {
		t.Errorf("Canon changed the record it was given: scopes %q, JWKS %s, Version %d", scopes, jwks, c.Version)
	}
}
