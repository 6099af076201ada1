package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/store"
)

const idportenPlaceholder = "  - name: idporten\n    type: oidc\n    enabled: false\n"

// idportenEntry is a complete ID-porten provider with a client secret by
// environment variable.
const idportenEntry = `  - name: idporten
    type: oidc
    display_name: ID-porten
    issuer: https://test.idporten.no
    client_id: tillit-test
    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET
    scopes: [openid, profile]
    acr_values: [idporten-loa-high]
`

func TestUpstreamProvider(t *testing.T) {
	clearEnv(t)
	t.Setenv("TILLIT_TEST_IDPORTEN_SECRET", "s3cret-s3cret")
	c, err := Load(writeConfig(t, strings.Replace(base, idportenPlaceholder, idportenEntry, 1), ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Registry()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.IdentityProviders, func(p store.IdentityProvider) bool { return p.Name == "idporten" })
	if i < 0 || r.IdentityProviders[i].OIDC == nil {
		t.Fatalf("idporten not in the registry with its settings: %+v", r.IdentityProviders)
	}
	u := r.IdentityProviders[i].OIDC
	if u.Issuer != "https://test.idporten.no" || u.ClientID != "tillit-test" || u.ClientSecretEnv != "TILLIT_TEST_IDPORTEN_SECRET" ||
		u.PIDClaim != "pid" || u.AMRClaim != "amr" || u.ACRClaim != "acr" || !slices.Equal(u.ACRValues, []string{"idporten-loa-high"}) ||
		u.ClientAuth() != store.UpstreamAuthClientSecret {
		t.Errorf("OIDC = %+v", u)
	}
	// The secret itself goes nowhere near the registry.
	if strings.Contains(r.IdentityProviders[i].OIDC.ClientSecretEnv+u.ClientSecretFile, "s3cret") {
		t.Error("the secret is in the registry")
	}
	// private_key_jwt names no key: Tillit makes it, RS256 unless asked.
	for _, tt := range []struct{ set, wantAlg string }{{"", "RS256"}, {"    algorithm: ES256\n", "ES256"}} {
		doc := strings.Replace(idportenEntry, "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", "    auth: private_key_jwt\n"+tt.set+"    name_claim: name\n", 1)
		c, err := Load(writeConfig(t, strings.Replace(base, idportenPlaceholder, doc, 1), ""))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := c.Registry()
		i := slices.IndexFunc(r.IdentityProviders, func(p store.IdentityProvider) bool { return p.Name == "idporten" })
		if u := r.IdentityProviders[i].OIDC; u.ClientAuth() != store.UpstreamAuthPrivateKeyJWT || u.Algorithm != tt.wantAlg || u.NameClaim != "name" {
			t.Errorf("private_key_jwt %q: OIDC = %+v", tt.set, u)
		}
	}
	// A placeholder without settings stays without them.
	c, err = Load(writeConfig(t, base, ""))
	if err != nil {
		t.Fatal(err)
	}
	r, _ = c.Registry()
	for _, p := range r.IdentityProviders {
		if p.OIDC != nil {
			t.Errorf("%s has OIDC settings %+v, want none", p.Name, p.OIDC)
		}
	}
}

func TestUpstreamProviderRules(t *testing.T) {
	clearEnv(t)
	t.Setenv("TILLIT_TEST_IDPORTEN_SECRET", "s3cret-s3cret")
	t.Setenv("TILLIT_TEST_EMPTY", "")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string
		wantErr  string
	}{
		{name: "issuer missing", old: "    issuer: https://test.idporten.no\n", new: "", wantErr: "identity_providers[1].issuer: is required for type oidc"},
		{name: "issuer plain http", old: "https://test.idporten.no", new: "http://test.idporten.no", wantErr: "identity_providers[1].issuer: must be an https URL"},
		{name: "issuer with a query", old: "https://test.idporten.no", new: "https://test.idporten.no/?x=1", wantErr: "is not an issuer URL"},
		{name: "client id missing", old: "    client_id: tillit-test\n", new: "", wantErr: "identity_providers[1].client_id: is required for type oidc"},
		{name: "no client authentication", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "", wantErr: "identity_providers[1]: needs exactly one client credential: auth: private_key_jwt, client_secret_env or client_secret_file"},
		{name: "two client authentications", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n    client_secret_file: " + empty + "\n", wantErr: "needs exactly one client credential"},
		{name: "key and secret", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    auth: private_key_jwt\n    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", wantErr: "identity_providers[1]: auth private_key_jwt takes no client_secret_env or client_secret_file"},
		{name: "auth unknown", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    auth: client_secret_basic\n", wantErr: `identity_providers[1].auth: "client_secret_basic" is not private_key_jwt or client_secret_post`},
		{name: "key algorithm HS256", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    auth: private_key_jwt\n    algorithm: HS256\n", wantErr: `identity_providers[1].algorithm: "HS256" is not RS256, PS256 or ES256`},
		{name: "algorithm with a secret", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n    algorithm: ES256\n", wantErr: "identity_providers[1].algorithm: applies to auth: private_key_jwt only"},
		{name: "secret variable unset", old: "TILLIT_TEST_IDPORTEN_SECRET", new: "TILLIT_TEST_EMPTY", wantErr: "identity_providers[1].client_secret_env: environment variable TILLIT_TEST_EMPTY is not set"},
		{name: "secret file missing", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    client_secret_file: /nonexistent/secret\n", wantErr: "identity_providers[1].client_secret_file: open /nonexistent/secret"},
		{name: "secret file empty", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    client_secret_file: " + empty + "\n", wantErr: "identity_providers[1].client_secret_file: " + empty + " is empty"},
		{name: "key file", old: "    client_secret_env: TILLIT_TEST_IDPORTEN_SECRET\n", new: "    private_key_file: /etc/tillit/key.json\n", wantErr: "identity_providers[1].private_key_file: is no longer read: set auth: private_key_jwt"},
		{name: "scopes without openid", old: "scopes: [openid, profile]", new: "scopes: [profile]", wantErr: "identity_providers[1].scopes: must contain openid"},
		{name: "acr value unknown", old: "acr_values: [idporten-loa-high]", new: "acr_values: [idporten-loa-low]", wantErr: `identity_providers[1].acr_values[0]: "idporten-loa-low" is not a level Tillit knows`},
		{name: "oidc setting on testidp", old: "    display_name: Test login\n", new: "    display_name: Test login\n    issuer: https://example.org\n", wantErr: "identity_providers[0].issuer: is only for type oidc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(base, idportenPlaceholder, idportenEntry, 1)
			if !strings.Contains(doc, tt.old) {
				t.Fatalf("document has no %q", tt.old)
			}
			doc = strings.Replace(doc, tt.old, tt.new, 1)
			_, err := Load(writeConfig(t, doc, ""))
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.wantErr)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error:\n%v\nwant exactly one, containing %q", err, tt.wantErr)
			}
		})
	}
}
