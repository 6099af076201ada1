package config

import (
	"fmt"
	"slices"

	"github.com/tillit-sts/tillit/helseid"
	servicekeys "github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// Registry turns the declared registry into store records for
// registry.Sync, with defaults filled in: status active (for delegations
// too; an identity provider with enabled: false is disabled), tenancy
// single-tenant, grant type client_credentials. A client's inline and file
// keys become one JWKS in registry.MarshalJWKS form, each key with a kid;
// its claims become flat API-specific claim names
// ("e-helse:sfm.api/client/claims/sfm-id"). Call it on a validated Config;
// it fails only on keys that Validate would also refuse. Keys holds the
// parsed key sets, so that the server's first snapshot does not parse them
// again.
func (c *Config) Registry() (registry.Registry, error) {
	var r registry.Registry
	for _, a := range c.APIs {
		r.APIs = append(r.APIs, store.API{
			Audience:            a.Audience,
			Name:                a.Name,
			Scopes:              slices.Clone(a.Scopes),
			ClientClaims:        slices.Clone(a.ClientClaims),
			AllowBearer:         a.AllowBearer,
			AccessTokenLifetime: a.AccessTokenLifetime,
			Status:              orDefault(a.Status, store.StatusActive),
			Owners:              slices.Clone(a.Owners),
			ExchangeByDefault:   a.ExchangeByDefault,
			SubjectClaims:       slices.Clone(a.SubjectClaims),
		})
	}
	for _, o := range c.Organizations {
		r.Organizations = append(r.Organizations, store.Organization{
			Number: o.Number,
			Name:   o.Name,
			Parent: o.Parent,
		})
	}
	for _, s := range c.ClientSystems {
		r.ClientSystems = append(r.ClientSystems, store.ClientSystem{
			ID:       s.ID,
			Name:     s.Name,
			Supplier: s.Supplier,
			APIs:     slices.Clone(s.APIs),
			Status:   orDefault(s.Status, store.StatusActive),
		})
	}
	for i, cl := range c.Clients {
		keys, errs := c.clientKeys(i)
		if len(errs) > 0 {
			return registry.Registry{}, errs.err()
		}
		jwks, err := c.Clients[i].parsed.stored, c.Clients[i].parsed.storedErr
		if err != nil {
			return registry.Registry{}, fmt.Errorf("config: client %q: %w", cl.ID, err)
		}
		if r.Keys == nil {
			r.Keys = make(registry.KeySets, len(c.Clients))
		}
		r.Keys[string(jwks)] = keys
		var claims map[string]string
		for aud, values := range cl.Claims {
			for name, value := range values {
				if claims == nil {
					claims = make(map[string]string)
				}
				claims[helseid.APIClientClaim(aud, name)] = value
			}
		}
		grants := slices.Clone(cl.GrantTypes)
		if len(grants) == 0 {
			grants = []string{oauth.GrantTypeClientCredentials}
		}
		r.Clients = append(r.Clients, store.Client{
			ID:                   cl.ID,
			Name:                 cl.Name,
			System:               cl.System,
			Tenancy:              orDefault(cl.Tenancy, store.SingleTenant),
			Organization:         cl.Organization,
			ChildOrganizations:   slices.Clone(cl.ChildOrganizations),
			JWKS:                 jwks,
			GrantTypes:           grants,
			Scopes:               slices.Clone(cl.Scopes),
			Claims:               claims,
			Status:               orDefault(cl.Status, store.StatusActive),
			RequireDPoP:          cl.RequireDPoP,
			AccessTokenLifetime:  cl.AccessTokenLifetime,
			ExchangeActors:       slices.Clone(cl.ExchangeActors),
			RefreshTokenLifetime: cl.RefreshTokenLifetime,

			RedirectURIs:           slices.Clone(cl.RedirectURIs),
			PostLogoutRedirectURIs: slices.Clone(cl.PostLogoutRedirectURIs),
			IdentityScopes:         slices.Clone(cl.IdentityScopes),
			AllowPlainAuthorize:    cl.RequirePAR != nil && !*cl.RequirePAR,
			AllowLoopbackAnyPort:   cl.AllowLoopbackAnyPort,
			// Kept as written: empty is the default, so that a change of
			// the default reaches every client that did not choose.
			IDTokenSignedResponseAlg: string(cl.IDTokenSignedResponseAlg),
		})
	}
	for _, d := range c.Delegations {
		r.Delegations = append(r.Delegations, store.Delegation{
			Organization: d.Organization,
			Supplier:     d.Supplier,
			AcceptedAPIs: slices.Clone(d.APIs),
			Status:       orDefault(d.Status, store.StatusActive),
		})
	}
	for _, p := range c.IdentityProviders {
		status := store.StatusActive
		if p.Enabled != nil && !*p.Enabled {
			status = store.StatusDisabled
		}
		r.IdentityProviders = append(r.IdentityProviders, store.IdentityProvider{
			Name:        p.Name,
			Type:        p.Type,
			DisplayName: p.DisplayName,
			Status:      status,
			OIDC:        p.upstream(),
		})
	}
	r.Persons, r.HealthPersonnel = c.population()
	return r, nil
}

// upstream is the store's form of an oidc provider's settings, defaults
// filled in; nil for other types and for a placeholder without settings.
func (p *IdentityProvider) upstream() *store.UpstreamOIDC {
	if p.Type != store.IdentityProviderOIDC || p.Issuer == "" {
		return nil
	}
	scopes := slices.Clone(p.Scopes)
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	return &store.UpstreamOIDC{
		Issuer:           p.Issuer,
		ClientID:         p.ClientID,
		Auth:             p.auth(),
		Algorithm:        p.algorithm(),
		ClientSecretEnv:  p.ClientSecretEnv,
		ClientSecretFile: p.ClientSecretFile,
		Scopes:           scopes,
		ACRValues:        slices.Clone(p.ACRValues),
		PIDClaim:         orDefault(p.PIDClaim, "pid"),
		AMRClaim:         orDefault(p.AMRClaim, "amr"),
		ACRClaim:         orDefault(p.ACRClaim, "acr"),
		GivenNameClaim:   p.GivenNameClaim,
		MiddleNameClaim:  p.MiddleNameClaim,
		FamilyNameClaim:  p.FamilyNameClaim,
		NameClaim:        p.NameClaim,
	}
}

// auth is the client authentication method at an oidc provider: as
// given, else client_secret_post when a secret is named.
func (p *IdentityProvider) auth() string {
	if p.Auth == "" && (p.ClientSecretEnv != "" || p.ClientSecretFile != "") {
		return store.UpstreamAuthClientSecret
	}
	return p.Auth
}

// algorithm is the algorithm of a new private_key_jwt key; empty for a
// client secret.
func (p *IdentityProvider) algorithm() string {
	if p.auth() != store.UpstreamAuthPrivateKeyJWT {
		return ""
	}
	return orDefault(p.Algorithm, string(servicekeys.DefaultUpstreamAlgorithm))
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// WithoutRegistry returns a copy of c without the declared registry and
// without the parsed file. A server keeps it after it has applied the
// registry: the file's registry sections, with their YAML tree, are
// several times the size of the registry's snapshot.
func (c *Config) WithoutRegistry() *Config {
	out := *c
	out.dropRegistry()
	out.src.tree = nil
	return &out
}

// dropRegistry empties the registry sections and what was read from the
// files they name.
func (c *Config) dropRegistry() {
	c.APIs, c.Organizations, c.ClientSystems, c.Clients = nil, nil, nil, nil
	c.Delegations, c.IdentityProviders = nil, nil
	c.Persons, c.PersonsFile, c.HPR, c.HPRFile = nil, "", nil, ""
	c.filePersons, c.fileHPR = nil, nil
}
