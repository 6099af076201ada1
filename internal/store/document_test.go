package store

import (
	"testing"
	"time"
)

// TestDocumentAsMap checks that Document writes, member by member, the
// bytes that encoding a map of the members writes, the form documents
// have always been stored in, for every kind and for values that encoding
// escapes.
func TestDocumentAsMap(t *testing.T) {
	meta := Meta{ManagedBy: ManagedByFile, Version: 3, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(2, 0)}
	odd := "<&> \u2028 \"quoted\" æøå \x01"
	check := func(name string, doc func() (string, error), viaMap func() (string, error)) {
		t.Helper()
		got, err := doc()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := viaMap()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s:\n%s\nwant\n%s", name, got, want)
		}
	}
	for _, c := range []Client{
		{},
		{ID: odd, Name: odd, System: "s", Tenancy: MultiTenant, Organization: "1", ChildOrganizations: []string{odd, "b"},
			JWKS: []byte(`{"keys":[]}`), GrantTypes: []string{}, Scopes: []string{"a"}, Claims: map[string]string{"z": odd, "a": "1"},
			Status: StatusActive, RequireDPoP: true, AccessTokenLifetime: time.Minute, ExchangeActors: []string{"x"},
			RefreshTokenLifetime: time.Hour, RedirectURIs: []string{"https://x/cb?a=<b>"}, PostLogoutRedirectURIs: []string{},
			IdentityScopes: []string{"openid"}, AllowPlainAuthorize: true, IDTokenSignedResponseAlg: "ES256", Meta: meta},
	} {
		check("client", func() (string, error) { return ClientKind.Document(c) }, func() (string, error) { return ClientKind.mapDocument(c) })
	}
	api := API{Audience: odd, Scopes: []string{"s"}, AllowBearer: true, Owners: []string{}, Meta: meta}
	check("api", func() (string, error) { return APIKind.Document(api) }, func() (string, error) { return APIKind.mapDocument(api) })
	org := Organization{Number: "1", Name: odd, Meta: meta}
	check("organisation", func() (string, error) { return OrganizationKind.Document(org) }, func() (string, error) { return OrganizationKind.mapDocument(org) })
	sys := ClientSystem{ID: "s", APIs: []string{"a"}, Meta: meta}
	check("client system", func() (string, error) { return ClientSystemKind.Document(sys) }, func() (string, error) { return ClientSystemKind.mapDocument(sys) })
	d := Delegation{Organization: "1", Supplier: "2", AcceptedAPIs: []string{odd}, Meta: meta}
	check("delegation", func() (string, error) { return DelegationKind.Document(d) }, func() (string, error) { return DelegationKind.mapDocument(d) })
	p := IdentityProvider{Name: "p", Type: IdentityProviderOIDC, DisplayName: odd, Meta: meta}
	check("identity provider", func() (string, error) { return IdentityProviderKind.Document(p) }, func() (string, error) { return IdentityProviderKind.mapDocument(p) })
	person := Person{PID: "1", GivenName: odd, Meta: meta}
	check("person", func() (string, error) { return PersonKind.Document(person) }, func() (string, error) { return PersonKind.mapDocument(person) })
	h := HealthPersonnel{Number: "1", PID: "2", Approvals: []HPRApproval{{Profession: "LE", Authorization: HPRCode{Value: "1", Description: odd}}}, Meta: meta}
	check("health personnel", func() (string, error) { return HealthPersonnelKind.Document(h) }, func() (string, error) { return HealthPersonnelKind.mapDocument(h) })

	for _, k := range []interface{ hasFields() bool }{ClientKind, APIKind, OrganizationKind, ClientSystemKind, DelegationKind, IdentityProviderKind, PersonKind, HealthPersonnelKind} {
		if !k.hasFields() {
			t.Errorf("%T writes its documents by way of a map", k)
		}
	}
}

func (k *Kind[T]) hasFields() bool { return k.fields != nil }
