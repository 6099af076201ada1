package token_test

import (
	"net/url"
	"testing"

	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestMultiTenant issues tokens to a multi-tenant client for the
// organisations that delegated to its supplier (profile §6.1), with the
// organisation claims and, where the organisation has not accepted an
// API's terms, the dropped scopes in rejected_scope (profile §6.3).
func TestMultiTenant(t *testing.T) {
	h := start(t)
	const (
		parent   = "helseid://claims/client/claims/orgnr_parent"
		child    = "helseid://claims/client/claims/orgnr_child"
		supplier = "helseid://claims/client/claims/orgnr_supplier"
		tenancy  = "helseid://claims/client/client_tenancy"
	)
	tests := []struct {
		name         string
		value        string // NO:ORGNR:...
		form         func(url.Values)
		wantAud      string
		wantScope    string
		wantRejected string
		want         map[string]any
		absent       []string
	}{
		{name: "parent with the trailing colon (.NET library)", value: "NO:ORGNR:" + servertest.Tenant + ":", form: deftScope,
			wantAud: "nhn:deft", wantScope: "nhn:deft/api",
			want:   map[string]any{parent: servertest.Tenant, supplier: servertest.Supplier, tenancy: "multi-tenant"},
			absent: []string{child}},
		{name: "parent without the trailing colon (KS fiks client)", value: "NO:ORGNR:" + servertest.Tenant, form: deftScope,
			wantAud: "nhn:deft", wantScope: "nhn:deft/api",
			want: map[string]any{parent: servertest.Tenant, tenancy: "multi-tenant"}},
		{name: "parent and a child, which is not checked against a list", value: "NO:ORGNR:" + servertest.Tenant + ":" + servertest.OtherChild, form: deftScope,
			wantAud: "nhn:deft", wantScope: "nhn:deft/api",
			want: map[string]any{parent: servertest.Tenant, child: servertest.OtherChild}},
		{name: "scope omitted: the scopes of the API whose terms were not accepted are rejected", value: "NO:ORGNR:" + servertest.Tenant,
			wantAud: "nhn:deft", wantScope: "nhn:deft/api", wantRejected: "test:bearer/read"},
		{name: "scopes of two APIs: the one not accepted is rejected, leaving one API", value: "NO:ORGNR:" + servertest.Tenant,
			form:    func(f url.Values) { f.Set("scope", "test:bearer/read nhn:deft/api") },
			wantAud: "nhn:deft", wantScope: "nhn:deft/api", wantRejected: "test:bearer/read"},
		{name: "an organisation that accepted both APIs' terms", value: "NO:ORGNR:" + servertest.TenantAll,
			form:    func(f url.Values) { f.Set("resource", "test:bearer") },
			wantAud: "test:bearer", wantScope: "test:bearer/read",
			want:   map[string]any{parent: servertest.TenantAll},
			absent: []string{supplier}}, // test:bearer does not ask for orgnr_supplier
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.do(call{client: "multi-client", assertion: details(multiDetail(tt.value)), form: tt.form})
			if r.status != 200 {
				t.Fatalf("status %d: %v", r.status, r.body)
			}
			if r.body["scope"] != tt.wantScope {
				t.Errorf("scope %v, want %q", r.body["scope"], tt.wantScope)
			}
			if got, _ := r.body["rejected_scope"].(string); got != tt.wantRejected {
				t.Errorf("rejected_scope %q, want %q", got, tt.wantRejected)
			}
			if _, ok := r.body["refresh_token"]; ok {
				t.Error("client_credentials returned a refresh token")
			}
			_, c := verify(t, h, r.body["access_token"].(string))
			if c["aud"] != tt.wantAud {
				t.Errorf("aud %v, want %s", c["aud"], tt.wantAud)
			}
			for k, v := range tt.want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := c[k]; ok {
					t.Errorf("token carries %s", k)
				}
			}
		})
	}
}

// TestDelegationChangesApply checks that a delegation added to the store
// (as `tillit delegation add` does) or disabled reaches the running server's
// snapshot, which the hot path reads.
func TestDelegationChangesApply(t *testing.T) {
	h := start(t)
	ask := func() result {
		return h.do(call{client: "multi-client", assertion: details(multiDetail("NO:ORGNR:" + servertest.Customer)), form: deftScope})
	}
	if r := ask(); r.code() != "invalid_request" {
		t.Fatalf("before the delegation: %d %v", r.status, r.body)
	}
	ctx := t.Context()
	d, err := store.Create(ctx, h.Store, store.DelegationKind, storeDelegation(servertest.Customer, servertest.Supplier, "nhn:deft"))
	if err != nil {
		t.Fatal(err)
	}
	refreshRegistry(t, h)
	if r := ask(); r.status != 200 {
		t.Fatalf("after the delegation: %d %v", r.status, r.body)
	}
	d.Status = store.StatusDisabled
	if _, err := store.Update(ctx, h.Store, store.DelegationKind, d); err != nil {
		t.Fatal(err)
	}
	refreshRegistry(t, h)
	if r := ask(); r.code() != "invalid_request" {
		t.Fatalf("after disabling the delegation: %d %v", r.status, r.body)
	}
}

func storeDelegation(organization, supplier string, apis ...string) store.Delegation {
	return store.Delegation{Organization: organization, Supplier: supplier, AcceptedAPIs: apis, Status: store.StatusActive}
}

// refreshRegistry makes a change in the store visible to the server now,
// rather than at its next poll.
func refreshRegistry(t *testing.T, h *harness) {
	t.Helper()
	if _, err := h.Srv.Registry().Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}
