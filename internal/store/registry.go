package store

import (
	"slices"
	"time"
)

// Status of a client or client system. Only active clients get tokens;
// pending ones wait for approval; disabled ones are refused.
type Status string

const (
	StatusActive   Status = "active"
	StatusPending  Status = "pending"
	StatusDisabled Status = "disabled"
)

// Tenancy of a client (HelseID profile §6.1).
type Tenancy string

const (
	SingleTenant Tenancy = "single-tenant"
	MultiTenant  Tenancy = "multi-tenant"
)

// ManagedByFile marks a record declared in the YAML configuration: the file
// wins for it, and when it disappears from the file it is disabled, never
// deleted. Records created by the CLI or the API have an empty ManagedBy and
// the file never touches them.
const ManagedByFile = "file"

// Meta is kept by the store on every registry record.
type Meta struct {
	ManagedBy string
	// Version starts at 1 and increases with every update. An update must
	// carry the Version it read; otherwise it fails with ErrConflict.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// API is a protected resource (an API) that tokens are issued for.
type API struct {
	// Audience is the API's identifier and the token aud, e.g. "nhn:deft".
	Audience string
	Name     string
	// Scopes are the full scope names of this API, e.g. "nhn:deft/api".
	Scopes []string
	// ClientClaims lists the optional client claims the API wants in its
	// tokens: "orgnr_supplier", "nhn:sfm:journal-id", or the short name of an
	// API-specific claim such as "sfm-id", which becomes the claim
	// "<audience>/client/claims/sfm-id".
	ClientClaims []string
	// AllowBearer lets clients get Bearer tokens (no DPoP) for this API. By
	// default an API requires DPoP.
	AllowBearer bool
	// AccessTokenLifetime overrides the default access token lifetime; zero
	// means the server default. The shorter of the API's and the client's
	// lifetime wins.
	AccessTokenLifetime time.Duration
	Status              Status
	// Owners are the IDs of the clients that own the API (its "configuration
	// owner" in HelseID): only they may exchange a token issued for it
	// (RFC 8693, profile §4.6) and introspect its tokens.
	Owners []string
	// ExchangeByDefault lets the owners exchange tokens of any client for
	// this API, without the subject client naming them in ExchangeActors.
	ExchangeByDefault bool
	// SubjectClaims are the API-specific claims this API accepts from the
	// subject token of a token exchange, by full name
	// ("e-helse:sfm.api/client/claims/sfm-id", "nhn:sfm:journal-id"). Other
	// API-specific claims of the subject are not carried into its tokens.
	SubjectClaims []string
	Meta
}

// APIKind: APIs by audience.
var APIKind = &Kind[API]{Name: "api",
	Key:    func(r *API) string { return r.Audience },
	Meta:   func(r *API) *Meta { return &r.Meta },
	Status: func(r *API) *Status { return &r.Status },
	Canonical: func(r *API) {
		sortSet(&r.Scopes)
		sortSet(&r.ClientClaims)
		sortSet(&r.Owners)
		sortSet(&r.SubjectClaims)
	},
}

// Organization is a legal entity or sub-unit, identified by its nine-digit
// number in Enhetsregisteret.
type Organization struct {
	Number string
	Name   string
	// Parent is the number of the legal entity a sub-unit belongs to.
	Parent string
	Meta
}

// OrganizationKind: organisations by number. They have no status: one the
// file no longer declares is kept, since it grants nothing by itself.
var OrganizationKind = &Kind[Organization]{Name: "organisation",
	Key:  func(r *Organization) string { return r.Number },
	Meta: func(r *Organization) *Meta { return &r.Meta },
}

// ClientSystem is a piece of software from a supplier (a "klientsystem");
// clients are configurations of it.
type ClientSystem struct {
	ID   string
	Name string
	// Supplier is the organisation number of the vendor.
	Supplier string
	// APIs lists the audiences the system may be configured for. Empty means
	// any.
	APIs   []string
	Status Status
	Meta
}

// ClientSystemKind: client systems by ID.
var ClientSystemKind = &Kind[ClientSystem]{Name: "client system",
	Key:       func(r *ClientSystem) string { return r.ID },
	Meta:      func(r *ClientSystem) *Meta { return &r.Meta },
	Status:    func(r *ClientSystem) *Status { return &r.Status },
	Canonical: func(r *ClientSystem) { sortSet(&r.APIs) },
}

// Client is a client configuration: what authenticates at the token endpoint.
type Client struct {
	ID     string
	Name   string
	System string // ClientSystem ID
	// Tenancy decides how organisation numbers are chosen.
	Tenancy Tenancy
	// Organization is the orgnr_parent of a single-tenant client. The JSON
	// names keep the spelling of stored documents written before the Go
	// identifiers were renamed.
	Organization string `json:"Organisation"`
	// ChildOrganizations are the sub-units a single-tenant client may name
	// in assertion_details.
	ChildOrganizations []string `json:"ChildOrganisations"`
	// JWKS is the client's public key set (JSON).
	JWKS       []byte
	GrantTypes []string
	Scopes     []string
	// Claims are API-specific client claims by full claim name, e.g.
	// "e-helse:sfm.api/client/claims/sfm-id".
	Claims map[string]string
	Status Status
	// RequireDPoP refuses token requests without a DPoP proof even for APIs
	// that allow Bearer.
	RequireDPoP bool
	// AccessTokenLifetime overrides the API's and the server's default;
	// zero means no override. The shortest applies.
	AccessTokenLifetime time.Duration
	// ExchangeActors are the IDs of the clients that may exchange this
	// client's tokens (HelseID's "allowed token exchange clients").
	ExchangeActors []string
	// RefreshTokenLifetime is the absolute lifetime of the refresh tokens
	// of one login (a family); zero means the server default. Refresh
	// tokens are issued only to clients with the refresh_token grant.
	RefreshTokenLifetime time.Duration
	// RedirectURIs are where the authorization endpoint may send the
	// browser back with a code: compared exactly, character by character.
	RedirectURIs []string `json:",omitempty"`
	// PostLogoutRedirectURIs are where end-session may send the browser
	// after logout, compared exactly.
	PostLogoutRedirectURIs []string `json:",omitempty"`
	// IdentityScopes are the scopes about the logged-in person (openid,
	// profile, offline_access, helseid://scopes/identity/..., ...) the
	// client may ask for at login, apart from Scopes, which are API
	// scopes.
	IdentityScopes []string `json:",omitempty"`
	// AllowPlainAuthorize lets the client send its authorization request
	// to the authorization endpoint directly rather than pushing it first
	// (PAR). False, the zero value of documents written before logins
	// existed, is the default: PAR required.
	AllowPlainAuthorize bool `json:",omitempty"`
	// AllowLoopbackAnyPort accepts, for a registered loopback redirect
	// URI, the same URI with any port (RFC 8252 §7.3); only in a test
	// environment.
	AllowLoopbackAnyPort bool `json:",omitempty"`
	// IDTokenSignedResponseAlg is the JWS algorithm of the client's ID
	// tokens (OpenID Connect Dynamic Client Registration §2). Empty, as in
	// documents written before it existed, is the default: RS256.
	IDTokenSignedResponseAlg string `json:",omitempty"`
	Meta
}

// ClientKind: clients by ID.
var ClientKind = &Kind[Client]{Name: "client",
	Key:    func(r *Client) string { return r.ID },
	Meta:   func(r *Client) *Meta { return &r.Meta },
	Status: func(r *Client) *Status { return &r.Status },
	Canonical: func(r *Client) {
		sortSet(&r.ChildOrganizations)
		sortSet(&r.GrantTypes)
		sortSet(&r.Scopes)
		sortSet(&r.ExchangeActors)
		sortSet(&r.IdentityScopes)
		if len(r.RedirectURIs) == 0 {
			r.RedirectURIs = nil
		}
		if len(r.PostLogoutRedirectURIs) == 0 {
			r.PostLogoutRedirectURIs = nil
		}
		if len(r.Claims) == 0 {
			r.Claims = nil
		}
		compactJSON(&r.JWKS)
	},
}

// Delegation says that Organization has delegated to Supplier the right to
// act for it in HelseID (the Altinn right "Databehandler kan opptre på vegne
// av min virksomhet i HelseID", profile §6.1). A multi-tenant client of that
// supplier may then name Organisation as the one it acts for.
type Delegation struct {
	Organization string `json:"Organisation"` // stored documents' spelling
	Supplier     string
	// AcceptedAPIs are the audiences whose terms of use Organisation has
	// accepted; scopes of other APIs are left out of its tokens and listed
	// in rejected_scope.
	AcceptedAPIs []string
	// Status is active or disabled; empty means active. A disabled
	// delegation grants nothing. The file disables the delegations it no
	// longer declares rather than deleting them, as it does clients.
	Status Status
	Meta
}

// DelegationKind: delegations by DelegationKey. Messages name one
// "<organisation>:<supplier>".
var DelegationKind = &Kind[Delegation]{Name: "delegation",
	Key:       func(r *Delegation) string { return DelegationKey(r.Organization, r.Supplier) },
	Meta:      func(r *Delegation) *Meta { return &r.Meta },
	Status:    func(r *Delegation) *Status { return &r.Status },
	Canonical: func(r *Delegation) { sortSet(&r.AcceptedAPIs) },
	Label:     func(r *Delegation) string { return r.Organization + ":" + r.Supplier },
}

// DelegationKey is the registry key of a delegation: organisation, a tab,
// supplier. The tab sorts below every printable character, so the byte
// order of keys is by organisation, then supplier. No organisation gives the
// empty key, which backends refuse to create.
func DelegationKey(organization, supplier string) string {
	if organization == "" {
		return ""
	}
	return organization + "\t" + supplier
}

// Active reports whether the delegation grants anything: an empty Status
// counts as active, as it does in the configuration file.
func (d *Delegation) Active() bool {
	return d.Status == "" || d.Status == StatusActive
}

// IdentityProviderType says how people log in at an identity provider.
type IdentityProviderType string

const (
	// IdentityProviderTestIdP is Tillit's own test login, which makes up
	// people: for test environments only.
	IdentityProviderTestIdP IdentityProviderType = "testidp"
	// IdentityProviderOIDC is an upstream OpenID Connect provider.
	IdentityProviderOIDC IdentityProviderType = "oidc"
)

// IdentityProvider is an upstream identity provider that people log in
// with.
type IdentityProvider struct {
	// Name identifies it, e.g. "testidp-oidc".
	Name        string
	Type        IdentityProviderType
	DisplayName string
	// Status is active or disabled; a disabled provider offers no login.
	Status Status
	// OIDC is how to log in at an upstream OpenID Connect provider; nil
	// for other types and for an oidc provider not yet configured, which
	// offers no login. Documents stored before it existed read as nil.
	OIDC *UpstreamOIDC `json:",omitempty"`
	Meta
}

// Client authentication methods toward an upstream provider.
const (
	UpstreamAuthPrivateKeyJWT = "private_key_jwt"
	UpstreamAuthClientSecret  = "client_secret_post"
)

// UpstreamOIDC configures an upstream OpenID Connect provider such as
// ID-porten. Tillit authenticates there with private_key_jwt, signing with
// a key it makes and keeps sealed in the store (keys.UpstreamPurpose), or
// with a client secret given by reference (an environment variable or a
// file), never the secret itself, so that the store holds nothing to log
// in with.
type UpstreamOIDC struct {
	// Issuer is the provider's issuer identifier; discovery is read from
	// Issuer + "/.well-known/openid-configuration".
	Issuer   string
	ClientID string
	// Auth is UpstreamAuthPrivateKeyJWT or UpstreamAuthClientSecret.
	Auth string `json:",omitempty"`
	// Algorithm is what a new private_key_jwt key is made for (RS256,
	// PS256 or ES256); a key keeps the algorithm it was made for.
	Algorithm string `json:",omitempty"`
	// ClientSecretEnv and ClientSecretFile name where the client secret
	// of UpstreamAuthClientSecret is; exactly one is set.
	ClientSecretEnv  string `json:",omitempty"`
	ClientSecretFile string `json:",omitempty"`
	Scopes           []string
	// ACRValues are asked for in the authorization request; the ID token's
	// acr must be at least the highest level among them.
	ACRValues []string `json:",omitempty"`
	// Claim mapping: which ID token claim holds what.
	PIDClaim        string
	AMRClaim        string
	ACRClaim        string
	GivenNameClaim  string `json:",omitempty"`
	MiddleNameClaim string `json:",omitempty"`
	FamilyNameClaim string `json:",omitempty"`
	NameClaim       string `json:",omitempty"`
}

// ClientAuth is the client authentication method at the provider.
func (u *UpstreamOIDC) ClientAuth() string {
	if u.Auth == UpstreamAuthPrivateKeyJWT {
		return UpstreamAuthPrivateKeyJWT
	}
	return UpstreamAuthClientSecret
}

// IdentityProviderKind: identity providers by name.
var IdentityProviderKind = &Kind[IdentityProvider]{Name: "identity provider",
	Key:    func(r *IdentityProvider) string { return r.Name },
	Meta:   func(r *IdentityProvider) *Meta { return &r.Meta },
	Status: func(r *IdentityProvider) *Status { return &r.Status },
}

// Person is someone of the test population: the names that ID tokens and
// userinfo give for a pid. Tillit has no user accounts; a login says who
// someone is, and this register only adds their names.
type Person struct {
	// PID is the national identity number (fødselsnummer or D-number).
	PID        string
	GivenName  string
	MiddleName string
	FamilyName string
	Meta
}

// PersonKind: persons by pid. They have no status: one the file no longer
// declares is kept, since a name grants nothing. Persons are not in the
// registry snapshot (a test population may be large); a login reads its
// person from the store.
var PersonKind = &Kind[Person]{Name: "person",
	Key:  func(r *Person) string { return r.PID },
	Meta: func(r *Person) *Meta { return &r.Meta },
}

// HealthPersonnel is an entry of the health personnel register
// (Helsepersonellregisteret, HPR): a person's HPR number and approvals, the
// helseid://claims/hpr/hpr_number claim and userinfo's hpr_details.
type HealthPersonnel struct {
	// Number is the HPR number, digits.
	Number string
	// PID is the person's national identity number; a login with it gets
	// Number as its hpr_number.
	PID       string
	Approvals []HPRApproval
	// Status is active or disabled; a disabled entry adds nothing to a
	// login.
	Status Status
	Meta
}

// HPRApproval is one approval (godkjenning) of a health professional, in
// the shape of hpr_details.
type HPRApproval struct {
	// Profession is the profession code, e.g. "LE" (lege) or "SP"
	// (sykepleier).
	Profession        string
	Authorization     HPRCode
	RequisitionRights []HPRCode
	Specialities      []HPRCode
}

// HPRCode is a coded value with its text, as hpr_details gives them.
type HPRCode struct {
	Value       string
	Description string
}

// HealthPersonnelKind: HPR entries by HPR number.
var HealthPersonnelKind = &Kind[HealthPersonnel]{Name: "health personnel",
	Key:    func(r *HealthPersonnel) string { return r.Number },
	Meta:   func(r *HealthPersonnel) *Meta { return &r.Meta },
	Status: func(r *HealthPersonnel) *Status { return &r.Status },
	Canonical: func(r *HealthPersonnel) {
		if len(r.Approvals) == 0 {
			r.Approvals = nil
			return
		}
		// A clone: the approvals are shared with the caller's record.
		r.Approvals = slices.Clone(r.Approvals)
		for i := range r.Approvals {
			a := &r.Approvals[i]
			if len(a.RequisitionRights) == 0 {
				a.RequisitionRights = nil
			}
			if len(a.Specialities) == 0 {
				a.Specialities = nil
			}
		}
	},
}
