package config

import (
	"log/slog"
	"net/netip"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/store"
)

// Environment variables that override the file. Secrets belong here rather
// than in a file that is easily copied or committed; the environment wins
// when both are set.
const (
	// EnvKeyEncryptionKey is the key-encryption key, base64 of 32 bytes.
	EnvKeyEncryptionKey = "TILLIT_KEY_ENCRYPTION_KEY"
	// EnvStorage replaces storage, for PostgreSQL URLs that carry a
	// password.
	EnvStorage = "TILLIT_STORAGE"
)

// Config is the whole configuration: server settings and the declared
// registry. Parse fills empty settings with the defaults documented on each
// field (the values of Default); the registry lists have none.
type Config struct {
	// Dev is development mode: issuer may be left out (it becomes
	// http://<listen>), and serve may create a key-encryption key in
	// data_dir. Never for production. `tillit serve --dev` sets it.
	Dev bool `yaml:"dev"`
	// Environment is test or production. Default: test in dev mode,
	// production otherwise. Only test allows what makes people or
	// organisations up (see Test).
	Environment Environment `yaml:"environment"`
	// Issuer is the URL tokens carry in iss and discovery is served under:
	// https (http only for loopback hosts), no trailing slash, no query or
	// fragment. Required unless Dev.
	Issuer string `yaml:"issuer"`
	// Listen is the host:port to listen on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLS makes the server answer HTTPS on Listen itself. Without it the
	// server speaks plain HTTP, for loopback or behind a proxy that ends
	// TLS.
	TLS TLS `yaml:"tls"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Storage names the store: a SQLite file path, a sqlite: URL
	// ("sqlite:/var/lib/tillit/tillit.db"), or a postgres:// URL. Relative
	// SQLite paths are taken from the config file's folder. Default: the
	// file tillit.db in DataDir. TILLIT_STORAGE overrides it.
	Storage string `yaml:"storage"`
	// DataDir is the folder for local state (the default SQLite database,
	// dev keys). Relative to the config file's folder. Default "data".
	DataDir string `yaml:"data_dir"`

	Keys            Keys            `yaml:"keys"`
	Tokens          Tokens          `yaml:"tokens"`
	ClientAssertion ClientAssertion `yaml:"client_assertion"`
	DPoP            DPoP            `yaml:"dpop"`
	HTTP            HTTP            `yaml:"http"`
	Log             Log             `yaml:"log"`

	// Instance names this server in the audit log, where each instance
	// writes its own chain of records. Two servers running at once must not
	// share a name: the second refuses to start (the instance lease,
	// internal/server). Default: the host name.
	Instance string `yaml:"instance"`

	// RateLimit limits the token endpoint.
	RateLimit RateLimit `yaml:"rate_limit"`

	// Audit configures the audit log.
	Audit Audit `yaml:"audit"`

	// RegistryPoll is how often a server checks the store for registry
	// changes made by other processes, and so bounds how long they take to
	// apply. Default 2s.
	RegistryPoll time.Duration `yaml:"registry_poll"`

	// CommitDelay is how long SQLite's writer may hold a commit open for
	// the decisions of token requests already under way, so that one
	// fsync serves more of them. Only requests in flight are waited for;
	// 0 turns it off. PostgreSQL does not use it: its writer is bound by
	// the database's CPU per decision, not per commit. Default 1ms.
	CommitDelay time.Duration `yaml:"commit_delay"`

	// The declared registry. These objects are file-managed: the file wins
	// for them at every start, and one removed from the file is disabled.
	APIs          []API          `yaml:"apis"`
	Organizations []Organization `yaml:"organisations"`
	ClientSystems []ClientSystem `yaml:"client_systems"`
	Clients       []Client       `yaml:"clients"`
	// Delegations say which organisations let which suppliers' multi-tenant
	// clients act for them: the stand-in for Altinn.
	Delegations []Delegation `yaml:"delegations"`
	// IdentityProviders are the identity providers people log in with.
	IdentityProviders []IdentityProvider `yaml:"identity_providers"`
	// Persons are the test population: names for pids.
	Persons []Person `yaml:"persons"`
	// PersonsFile is a CSV file of more persons (pid, given_name,
	// middle_name, family_name, with that header), relative to the config
	// file's folder: for a population too large to list here.
	PersonsFile string `yaml:"persons_file"`
	// HPR are entries of the health personnel register.
	HPR []HPR `yaml:"hpr"`
	// HPRFile is a YAML file holding a list of more HPR entries, each as
	// under hpr, relative to the config file's folder.
	HPRFile string `yaml:"hpr_file"`

	// What PersonsFile and HPRFile hold, read by Parse, with the line of
	// each entry.
	filePersons []filePerson
	fileHPR     []fileHPR
	fileErrs    Errors

	// Where the configuration came from, for messages and relative paths.
	src source
}

// TLS is the server's certificate. Both files or neither.
type TLS struct {
	// CertFile is the certificate chain in PEM, the server's certificate
	// first. Relative to the config file's folder.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the certificate's private key in PEM. Relative to the
	// config file's folder.
	KeyFile string `yaml:"key_file"`
}

// Enabled says whether the server speaks TLS itself.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen, when set, serves /metrics on this host:port only (plain
	// HTTP) and not on the main listener, so that it need not be public
	// next to the token endpoint. Default: /metrics on the main listener.
	Listen string `yaml:"listen"`
}

// Audit configures the audit log.
type Audit struct {
	// HeadLogEveryRecords and HeadLogInterval say how often the server
	// logs its chain's head (the "audit head" line), whichever comes
	// first: after that many records, or after that long if any record
	// was written. Records after the last logged head are the ones a
	// rollback of the database could remove unnoticed. Defaults 1000 and
	// 10s; the head is also logged when the server starts and stops.
	HeadLogEveryRecords int64         `yaml:"head_log_every_records"`
	HeadLogInterval     time.Duration `yaml:"head_log_interval"`
	// Retention is how long records are kept: every hour a server removes
	// the records older than that from every chain, keeping each chain's
	// newest, and seals a checkpoint that vouches for what it removed, so
	// that the chains still verify. Zero (the default) keeps every record
	// for ever; otherwise at least 24h.
	Retention time.Duration `yaml:"retention"`
}

// Keys configures the service's signing keys.
type Keys struct {
	// Algorithm signs access tokens: RS256 (default; what HelseID clients
	// and APIs expect), PS256 or ES256.
	Algorithm jose.SignatureAlgorithm `yaml:"algorithm"`
	// EncryptionKeyFile holds the key-encryption key that seals private
	// keys in the store: base64 of 32 random bytes. Relative to the config
	// file's folder. TILLIT_KEY_ENCRYPTION_KEY wins over it.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// EncryptionKey is the decoded key-encryption key, from the environment
	// or EncryptionKeyFile; nil when neither is set.
	EncryptionKey Secret `yaml:"-"`
	// PublishLead is how long a new key is published in the JWKS before it
	// signs, so that APIs caching the JWKS know it in time. Default 24h.
	PublishLead time.Duration `yaml:"publish_lead"`
	// RotationPeriod is how long a key signs before the next one takes
	// over. Default 2160h (90 days).
	RotationPeriod time.Duration `yaml:"rotation_period"`
	// ExpiredRetention is how long a retired key stays listed at
	// expired_jwks_uri once every token it signed has expired. Default
	// 2160h.
	ExpiredRetention time.Duration `yaml:"expired_retention"`
}

// Tokens configures issued tokens.
type Tokens struct {
	// AccessTokenLifetime is the default access token lifetime; an API or
	// client may set a shorter one. Default 1h (HelseID's).
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	// RefreshTokenLifetime is the default absolute lifetime of the refresh
	// tokens of one login; a client may set its own. Default 10h.
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"`
}

// ClientAssertion configures private_key_jwt client authentication.
type ClientAssertion struct {
	// AllowRSAlgorithms accepts RS256/384/512 as well as PS* and ES*, which
	// are always accepted. Default true: HelseID accepts RS* and many
	// clients use it.
	AllowRSAlgorithms bool `yaml:"allow_rs_algorithms"`
	// MaxLifetime is the longest exp - now (and exp - iat) accepted. At
	// most 60s, HelseID's limit. Default 60s.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// ClockSkew is how far in the future iat and nbf may be. Default 10s;
	// zero is allowed.
	ClockSkew time.Duration `yaml:"clock_skew"`
}

// Algorithms returns the accepted client assertion algorithms, for the
// verifier and for discovery alike.
func (c ClientAssertion) Algorithms() []jose.SignatureAlgorithm {
	algs := []jose.SignatureAlgorithm{jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512}
	if c.AllowRSAlgorithms {
		algs = append(algs, jose.RS256, jose.RS384, jose.RS512)
	}
	return algs
}

// DPoP configures DPoP at the token endpoint.
type DPoP struct {
	// RequireNonce makes the token endpoint demand a server nonce
	// (use_dpop_nonce), as HelseID does. Default true.
	RequireNonce bool `yaml:"require_nonce"`
	// NonceSlot is the time slot of the stateless nonces; a nonce is valid
	// in its slot and the next. Default 60s.
	NonceSlot time.Duration `yaml:"nonce_slot"`
	// ProofWindow is how far a proof's iat may be from now either way.
	// Default 60s.
	ProofWindow time.Duration `yaml:"proof_window"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	// MaxBodyBytes bounds request bodies. Default 8192.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading request headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// RequestTimeout is the deadline of a request's work, the store's
	// reads and commits included: a store that has not answered by then
	// gets the client a 503 temporarily_unavailable. It must be below
	// WriteTimeout, which the server counts from the end of the headers,
	// so that the answer is written before the connection's deadline cuts
	// it off. Default 5s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// IdleTimeout bounds idle keep-alive connections. Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long a stopping server lets requests in flight
	// finish. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// RateLimit limits token requests per source address (checked first, before
// any signature is verified) and per authenticated client. A limited request
// is answered 429 with Retry-After. Rates of 0 switch a limit off, which is
// the default: a development STS under a load test should not refuse it.
type RateLimit struct {
	// PerAddress is the requests per second one source address may make.
	PerAddress float64 `yaml:"per_address"`
	// AddressBurst is how many it may make at once. Default 2 × per_address.
	AddressBurst int `yaml:"address_burst"`
	// PerClient is the requests per second one client may make.
	PerClient float64 `yaml:"per_client"`
	// ClientBurst is how many it may make at once. Default 2 × per_client.
	ClientBurst int `yaml:"client_burst"`
	// LoginPerMinute is how many login attempts (starting a login,
	// posting a login form) one source address may make per minute, at
	// most that many at once. 0 switches it off. Default 30.
	LoginPerMinute int `yaml:"login_per_minute"`
	// MaxAddresses bounds the source addresses tracked at once, and so the
	// limiter's memory. When that many are being limited, a new address
	// is refused until buckets refill. Default 100000.
	MaxAddresses int `yaml:"max_addresses"`
	// TrustedProxies are the addresses and CIDR prefixes of the proxies in
	// front of Tillit. A request whose peer is one of them has its source
	// address taken from X-Forwarded-For: the rightmost entry that is not
	// a trusted proxy. Only the entries the trusted proxies appended are
	// believed; what is left of them the client wrote. Empty (the default)
	// means the peer is the source and X-Forwarded-For is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TrustForwardedFor is the old switch that took the first
	// X-Forwarded-For entry, which a client chooses when its proxy
	// appends. It is kept only to refuse true with a message that names
	// trusted_proxies; false changes nothing.
	TrustForwardedFor bool `yaml:"trust_forwarded_for"`
}

// Proxies are TrustedProxies as prefixes (an address is a prefix of its
// full length), IPv4 ones in their 4-byte form. Entries that Validate
// refuses are left out.
func (r RateLimit) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range r.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog.Level; Validate has checked it.
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// API declares an API resource (store.API).
type API struct {
	// Audience is the aud of its tokens, e.g. "nhn:deft". Required; no "/"
	// and no spaces.
	Audience string `yaml:"audience"`
	Name     string `yaml:"name"`
	// Scopes are full scope names, each "<audience>/<name>" (HelseID
	// profile §5.6). At least one.
	Scopes []string `yaml:"scopes"`
	// ClientClaims are the optional client claims the API wants:
	// orgnr_supplier, nhn:sfm:journal-id, or the short name of an
	// API-specific claim (sfm-id) whose value each client sets under
	// claims.
	ClientClaims []string `yaml:"client_claims"`
	// AllowBearer lets clients get Bearer tokens for it. Default false: the
	// API requires DPoP.
	AllowBearer bool `yaml:"allow_bearer"`
	// AccessTokenLifetime overrides tokens.access_token_lifetime when
	// shorter. Default: none.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	// Status is active (default), pending or disabled.
	Status store.Status `yaml:"status"`
	// Owners are the IDs of the clients that own the API: only they may
	// exchange its tokens (token exchange) and introspect them. Each must
	// be declared in the file.
	Owners []string `yaml:"owners"`
	// ExchangeByDefault lets the owners exchange any client's tokens for
	// this API, without the client naming them in exchange_actors.
	ExchangeByDefault bool `yaml:"exchange_by_default"`
	// SubjectClaims are API-specific claims of other APIs that this API
	// accepts from the subject token of a token exchange, by full name
	// (e-helse:sfm.api/client/claims/sfm-id) or nhn:sfm:journal-id.
	SubjectClaims []string `yaml:"subject_claims"`
}

// Organization declares an organisation (store.Organization).
type Organization struct {
	// Number is the nine-digit organisation number. Quote it or not.
	Number string `yaml:"number"`
	Name   string `yaml:"name"`
	// Parent is the number of the legal entity a sub-unit belongs to.
	Parent string `yaml:"parent"`
}

// ClientSystem declares a client system (store.ClientSystem).
type ClientSystem struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Supplier is the vendor's organisation number. Required.
	Supplier string `yaml:"supplier"`
	// APIs limits the audiences its clients may have scopes for. Default:
	// any.
	APIs []string `yaml:"apis"`
	// Status is active (default), pending or disabled.
	Status store.Status `yaml:"status"`
}

// Client declares a client configuration (store.Client).
type Client struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// System is the ID of a client system declared in the file. Required.
	System string `yaml:"system"`
	// Tenancy is single-tenant (default) or multi-tenant.
	Tenancy store.Tenancy `yaml:"tenancy"`
	// Organization is the orgnr_parent of a single-tenant client; required
	// for one, not allowed for a multi-tenant client.
	Organization string `yaml:"organisation"`
	// ChildOrganizations are the sub-units a single-tenant client may name.
	ChildOrganizations []string `yaml:"child_organisations"`
	// JWKS is the client's public keys inline: a JWKS object, one JWK, or
	// either as a JSON string.
	JWKS JWKS `yaml:"jwks"`
	// JWKSFile is a file with more public keys (a JWKS or one JWK),
	// relative to the config file's folder. At least one key in all.
	JWKSFile string `yaml:"jwks_file"`
	// GrantTypes default to [client_credentials]. Also accepted:
	// authorization_code, refresh_token and
	// urn:ietf:params:oauth:grant-type:token-exchange.
	GrantTypes []string `yaml:"grant_types"`
	// Scopes the client may ask for; each must be declared by an API.
	Scopes []string `yaml:"scopes"`
	// Claims are API-specific client claim values by audience, then by the
	// claim's short name, which the API must list in client_claims:
	// claims: {e-helse:sfm.api: {sfm-id: ...}} becomes
	// "e-helse:sfm.api/client/claims/sfm-id".
	Claims map[string]map[string]string `yaml:"claims"`
	// Status is active (default), pending or disabled.
	Status store.Status `yaml:"status"`
	// RequireDPoP refuses Bearer tokens to this client even for APIs that
	// allow them.
	RequireDPoP bool `yaml:"require_dpop"`
	// AccessTokenLifetime overrides the API's and the server's when
	// shorter. Default: none.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	// ExchangeActors are the IDs of the clients that may exchange this
	// client's tokens (token exchange). Each must be declared in the file.
	ExchangeActors []string `yaml:"exchange_actors"`
	// RefreshTokenLifetime is the absolute lifetime of the client's refresh
	// tokens, replacing tokens.refresh_token_lifetime. Only for clients
	// with the refresh_token grant. Default: the server's.
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"`
	// RedirectURIs are where a login may return with a code, compared
	// exactly: https, or http on a loopback address (127.0.0.1, [::1],
	// localhost). Required with the authorization_code grant.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are where logout may return, with the same
	// rules.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// IdentityScopes are the scopes about the logged-in person the client
	// may ask for at login: openid, profile, offline_access (needs the
	// refresh_token grant) and the helseid://scopes/identity/ and
	// helseid://scopes/hpr/ scopes. Only with the authorization_code
	// grant.
	IdentityScopes []string `yaml:"identity_scopes"`
	// RequirePAR makes the client push its authorization requests (PAR)
	// rather than send them through the browser. Default true.
	RequirePAR *bool `yaml:"require_par"`
	// AllowLoopbackAnyPort accepts a registered loopback redirect URI with
	// any port, as native apps need (RFC 8252 §7.3). Only with
	// environment: test.
	AllowLoopbackAnyPort bool `yaml:"allow_loopback_any_port"`
	// IDTokenSignedResponseAlg is the algorithm the client's ID tokens are
	// signed with (OpenID Connect Dynamic Client Registration §2): one of
	// idtoken.Algorithms. Default RS256, whatever keys.algorithm is. Only
	// with the authorization_code grant.
	IDTokenSignedResponseAlg jose.SignatureAlgorithm `yaml:"id_token_signed_response_alg"`

	fileKeys []byte // contents of JWKSFile, read by Parse
	fileErr  error  // why reading JWKSFile failed
	// parsed are the keys clientKeys found, for the JWKS and JWKSFile it
	// found them in: validation and Registry share them, so that each key
	// is parsed once.
	parsed *parsedKeys
}

// Delegation declares that an organisation lets a supplier's multi-tenant
// clients act for it (store.Delegation), the Altinn right "Databehandler kan
// opptre på vegne av min virksomhet i HelseID".
type Delegation struct {
	// Organization is the delegating organisation's number. Required.
	Organization string `yaml:"organisation"`
	// Supplier is the number of the supplier the right is delegated to: the
	// supplier of the multi-tenant client's client system. Required.
	Supplier string `yaml:"supplier"`
	// APIs are the audiences whose terms of use the organisation has
	// accepted. Scopes of other APIs are left out of its tokens and listed
	// in rejected_scope.
	APIs []string `yaml:"apis"`
	// Status is active (default) or disabled.
	Status store.Status `yaml:"status"`
}

// IdentityProvider declares an identity provider people log in with
// (store.IdentityProvider).
type IdentityProvider struct {
	// Name identifies it, e.g. testidp-oidc: letters, digits, ".", "_"
	// and "-", at most 64. Required; unique.
	Name string `yaml:"name"`
	// Type is testidp (Tillit's own test login) or oidc. Required.
	Type store.IdentityProviderType `yaml:"type"`
	// DisplayName is what a login page shows: one line.
	DisplayName string `yaml:"display_name"`
	// Enabled offers its login. Default true.
	Enabled *bool `yaml:"enabled"`

	// The rest is for type oidc only.

	// Issuer is the provider's issuer: https (http only to a loopback
	// address). Required for oidc.
	Issuer string `yaml:"issuer"`
	// ClientID is Tillit's client id at the provider. Required for oidc.
	ClientID string `yaml:"client_id"`
	// Auth is how Tillit authenticates at the provider: private_key_jwt,
	// with a key Tillit makes on its first start and keeps sealed in the
	// store (`tillit idp jwks` prints its public half to register), or
	// client_secret_post, with a secret that ClientSecretEnv or
	// ClientSecretFile names. Default: client_secret_post when one of
	// those is set. Exactly one credential.
	Auth string `yaml:"auth"`
	// Algorithm is what the private_key_jwt key is made for: RS256
	// (default, what ID-porten takes), PS256 or ES256.
	Algorithm        string `yaml:"algorithm"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// PrivateKeyFile was a private JWK file; it is refused with a pointer
	// to auth: private_key_jwt, since Tillit now keeps the key sealed.
	PrivateKeyFile string `yaml:"private_key_file"`
	// Scopes asked for; default [openid]; must contain openid.
	Scopes []string `yaml:"scopes"`
	// ACRValues asked for, e.g. [idporten-loa-high].
	ACRValues []string `yaml:"acr_values"`
	// PIDClaim holds the national identity number; default pid.
	PIDClaim string `yaml:"pid_claim"`
	// AMRClaim holds the authentication methods; default amr.
	AMRClaim string `yaml:"amr_claim"`
	// ACRClaim holds the level of assurance; default acr.
	ACRClaim string `yaml:"acr_claim"`
	// Name claims; empty means the provider gives no names. NameClaim is
	// the whole name in one claim.
	GivenNameClaim  string `yaml:"given_name_claim"`
	MiddleNameClaim string `yaml:"middle_name_claim"`
	FamilyNameClaim string `yaml:"family_name_claim"`
	NameClaim       string `yaml:"name_claim"`
}

// Environment says whether a configuration is for testing or production.
type Environment string

const (
	// EnvironmentTest allows exactly what makes people or organisations
	// up: identity providers of type testidp, the test-token service,
	// loopback redirect URIs with any port for clients that opt in,
	// synthetic pids and organisation numbers, and self-delegation.
	EnvironmentTest Environment = "test"
	// EnvironmentProduction refuses to start with any of them.
	EnvironmentProduction Environment = "production"
)

// Test reports whether the configuration is for a test environment. An
// empty Environment (a Config built in code) is the default: test in dev
// mode, production otherwise.
func (c *Config) Test() bool {
	return c.Environment == EnvironmentTest || (c.Environment == "" && c.Dev)
}

// Person declares someone of the test population (store.Person).
type Person struct {
	// PID is the 11-digit national identity number: a fødselsnummer or a
	// D-number; synthetic numbers only in a test environment. Required;
	// unique.
	PID        string `yaml:"pid"`
	GivenName  string `yaml:"given_name"`
	MiddleName string `yaml:"middle_name"`
	FamilyName string `yaml:"family_name"`
}

// HPR declares an entry of the health personnel register
// (store.HealthPersonnel).
type HPR struct {
	// Number is the HPR number: digits. Required; unique.
	Number string `yaml:"number"`
	// PID is the person's national identity number. Required; one entry
	// per pid.
	PID string `yaml:"pid"`
	// Approvals are the person's approvals; at least one.
	Approvals []HPRApproval `yaml:"approvals"`
	// Enabled adds the entry to logins. Default true.
	Enabled *bool `yaml:"enabled"`
}

// HPRApproval is one approval of a health professional.
type HPRApproval struct {
	// Profession is the profession code, two capital letters: LE (lege),
	// SP (sykepleier), ... Required.
	Profession string `yaml:"profession"`
	// Authorization is the kind of approval. Default {value: "1",
	// description: Autorisasjon}.
	Authorization     *HPRCode  `yaml:"authorization"`
	RequisitionRights []HPRCode `yaml:"requisition_rights"`
	Specialities      []HPRCode `yaml:"specialities"`
}

// HPRCode is a coded value and its text.
type HPRCode struct {
	Value       string `yaml:"value"`
	Description string `yaml:"description"`
}

// Default returns the settings Parse starts from before it reads a file.
// Derived defaults (Issuer in Dev mode, Storage from DataDir) are filled
// in by Parse.
func Default() *Config {
	return &Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "data",
		Keys: Keys{
			Algorithm:        jose.RS256,
			PublishLead:      24 * time.Hour,
			RotationPeriod:   90 * 24 * time.Hour,
			ExpiredRetention: 90 * 24 * time.Hour,
		},
		Tokens: Tokens{AccessTokenLifetime: time.Hour, RefreshTokenLifetime: 10 * time.Hour},
		ClientAssertion: ClientAssertion{
			AllowRSAlgorithms: true,
			MaxLifetime:       60 * time.Second,
			ClockSkew:         10 * time.Second,
		},
		DPoP: DPoP{
			RequireNonce: true,
			NonceSlot:    60 * time.Second,
			ProofWindow:  60 * time.Second,
		},
		HTTP: HTTP{
			MaxBodyBytes:      8 << 10,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			RequestTimeout:    5 * time.Second,
			IdleTimeout:       60 * time.Second,
			ShutdownTimeout:   10 * time.Second,
		},
		RateLimit:    RateLimit{MaxAddresses: ratelimit.DefaultMaxKeys, LoginPerMinute: 30},
		Log:          Log{Level: "info", Format: "json"},
		Audit:        Audit{HeadLogEveryRecords: 1000, HeadLogInterval: 10 * time.Second},
		RegistryPoll: 2 * time.Second,
		CommitDelay:  DefaultCommitDelay,
	}
}

// DefaultCommitDelay is commit_delay's default: under load it lets a
// commit carry about twice the decisions for at most a millisecond more
// latency (docs/performance.md, "Commit delay").
const DefaultCommitDelay = time.Millisecond

// Secret is key material. It prints as "[redacted]" so that logging a
// Config cannot leak it.
type Secret []byte

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

type parsedKeys struct {
	jwks []byte
	file string
	keys []jose.JSONWebKey
	errs Errors
	// stored is keys as the registry stores them (registry.MarshalJWKS),
	// made with the parsing so that it too happens on every core.
	stored    []byte
	storedErr error
}
