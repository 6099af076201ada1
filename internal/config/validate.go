package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/jws"
	servicekeys "github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// Storage backends, as StorageBackend names them.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// StorageBackend says which backend Storage names and what to open: the
// file path for SQLite, the whole URL for PostgreSQL.
func (c *Config) StorageBackend() (backend, target string, err error) {
	backend, target, err = splitStorage(c.Storage)
	if err != nil {
		return "", "", fmt.Errorf("config: storage: %w", err)
	}
	return backend, target, nil
}

// schemeRE needs two letters before the colon so that a Windows drive
// letter ("C:\data\tillit.db") is a path, not a scheme.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:`)

// splitStorage never puts the value in its errors: a PostgreSQL URL may
// carry a password.
func splitStorage(s string) (backend, target string, err error) {
	switch {
	case s == "":
		return "", "", errors.New("is empty")
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL
			}
			return "", "", fmt.Errorf("is not a valid PostgreSQL URL: %w", err)
		}
		return BackendPostgres, s, nil
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		switch {
		case p == "":
			return "", "", errors.New("sqlite: URL has no file path")
		case strings.Contains(p, "?"):
			return "", "", errors.New("sqlite: URL options are not supported; give only the file path")
		}
		return BackendSQLite, p, nil
	case schemeRE.MatchString(s):
		scheme, _, _ := strings.Cut(s, ":")
		return "", "", fmt.Errorf("scheme %q is not supported: use a SQLite file path, sqlite:<path> or postgres://", scheme)
	}
	return BackendSQLite, s, nil
}

// devIssuer is the issuer dev mode uses when none is set: the listen
// address, with a wildcard host replaced by localhost so that clients on
// the same machine can reach it.
func devIssuer(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// checkIssuer applies the rules for an issuer identifier (RFC 8414 §2) and
// Tillit's own: https except on loopback hosts, and no trailing slash,
// because clients and APIs compare iss byte for byte with what they were
// configured with and HelseID's issuers have none.
func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("%q must use https (http is allowed only for localhost and loopback addresses)", s)
	default:
		return fmt.Errorf("%q is not an https URL", s)
	}
	switch {
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q must not carry a user name or password", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q must not have a query or fragment", s)
	case strings.HasSuffix(u.Path, "/"):
		return fmt.Errorf("%q must not end with /", s)
	}
	return nil
}

// checkTLS checks that the certificate and key load and belong together,
// so that a mistake is found at start and not at the first handshake.
func (c *Config) checkTLS(k *checker) {
	t := c.TLS
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return
	case t.CertFile == "":
		k.add(path{"tls", "cert_file"}, "is required with tls.key_file")
		return
	case t.KeyFile == "":
		k.add(path{"tls", "key_file"}, "is required with tls.cert_file")
		return
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		k.add(path{"tls"}, "the certificate and key do not load: %v", err)
	}
}

func checkListen(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("%q is not host:port", listen)
	}
	// Port 0 is allowed: tests ask the kernel for a free port.
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scopeToken is RFC 6749 §3.3: visible ASCII except " and \.
func scopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validID accepts visible ASCII: IDs travel in form fields, JWT claims and
// log lines, where white space or control characters only cause trouble.
func validID(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// claimNameRE is the short name of an API-specific client claim (sfm-id,
// vkp-id, herid): it becomes the last segment of a claim name.
var claimNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// builtinClaims are client claims an API may ask for whose values Tillit
// fills in itself, not per client.
var builtinClaims = []string{helseid.WantOrgNrSupplier, helseid.WantSFMJournalID}

var grantTypes = []string{
	oauth.GrantTypeClientCredentials,
	oauth.GrantTypeAuthorizationCode,
	oauth.GrantTypeRefreshToken,
	oauth.GrantTypeTokenExchange,
}

// identityScopes are the scopes about the logged-in person a client may be
// allowed at login (HelseID profile §5.6).
var identityScopes = []string{
	"openid", "profile", "offline_access",
	"helseid://scopes/identity/all",
	"helseid://scopes/identity/pid",
	"helseid://scopes/identity/pid_pseudonym",
	"helseid://scopes/identity/security_level",
	"helseid://scopes/identity/assurance_level",
	"helseid://scopes/identity/network",
	"helseid://scopes/hpr/hpr_number",
	"helseid://scopes/hpr",
}

var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

var logLevels = []string{"debug", "info", "warn", "error"}

func validStatus(s store.Status) bool {
	switch s {
	case "", store.StatusActive, store.StatusPending, store.StatusDisabled:
		return true
	}
	return false
}

// Validate reports every problem in c, each with its line when c came from
// Parse. The error is Errors. Parse has already called it; call it after
// changing a Config in code. Empty statuses, tenancies and grant types mean
// their defaults; empty settings are errors, so start a Config built in
// code from Default.
func (c *Config) Validate() error {
	return c.check().err()
}

// checker collects problems.
type checker struct {
	src  source
	errs Errors
}

func (k *checker) add(p path, format string, args ...any) {
	k.errs = append(k.errs, k.src.errorAt(p, nil, format, args...))
}

// declaredAt names entry j of the list at key, where a value declared
// again was first declared, with the line of its field when the file has
// one: "clients[1] (line 12)", so that both lines are in the message.
func (k *checker) declaredAt(key string, j int, field ...any) string {
	p := path{key, j}
	if line := k.src.line(p.with(field...)); line > 0 {
		return fmt.Sprintf("%s (line %d)", p, line)
	}
	return p.String()
}

func (p path) with(els ...any) path {
	return append(append(path{}, p...), els...)
}

func (c *Config) check() Errors {
	k := &checker{src: c.src}
	k.errs = append(k.errs, c.fileErrs...)
	c.checkServer(k)
	c.checkRegistry(k)
	return k.errs
}

func (c *Config) checkServer(k *checker) {
	switch c.Environment {
	case EnvironmentTest, EnvironmentProduction, "":
	default:
		k.add(path{"environment"}, "%q is not %s or %s", c.Environment, EnvironmentTest, EnvironmentProduction)
	}
	switch {
	case c.Issuer == "" && !c.Dev:
		k.add(path{"issuer"}, "is required (outside dev mode)")
	case c.Issuer != "":
		if err := checkIssuer(c.Issuer); err != nil {
			k.add(path{"issuer"}, "%v", err)
		}
	}
	if err := checkListen(c.Listen); err != nil {
		if c.src.listenOverridden {
			k.errs = append(k.errs, &Error{Path: "listen", Msg: err.Error() + " (given on the command line)"})
		} else {
			k.add(path{"listen"}, "%v", err)
		}
	}
	c.checkTLS(k)
	if c.Metrics.Listen != "" {
		if err := checkListen(c.Metrics.Listen); err != nil {
			k.add(path{"metrics", "listen"}, "%v", err)
		} else if c.Metrics.Listen == c.Listen {
			k.add(path{"metrics", "listen"}, "is the same address as listen; leave it out to serve /metrics on the main listener")
		}
	}
	// An empty storage follows from an empty data_dir, reported below.
	if _, _, err := splitStorage(c.Storage); err != nil && (c.Storage != "" || c.DataDir != "") {
		if c.src.storageFromEnv {
			k.errs = append(k.errs, &Error{Path: EnvStorage, Msg: err.Error(), Err: err})
		} else {
			k.add(path{"storage"}, "%v", err)
		}
	}
	if c.DataDir == "" {
		k.add(path{"data_dir"}, "is empty")
	}

	if !slices.Contains(signingAlgorithms, c.Keys.Algorithm) {
		k.add(path{"keys", "algorithm"}, "%q is not one of RS256, PS256, ES256", c.Keys.Algorithm)
	}
	if n := len(c.Keys.EncryptionKey); n != 0 && n != 32 {
		k.add(path{"keys", "encryption_key_file"}, "key-encryption key is %d bytes, want 32", n)
	}
	nonNegative := func(p path, d time.Duration) {
		if d < 0 {
			k.add(p, "must not be negative, got %v", d)
		}
	}
	positive := func(p path, d time.Duration) {
		if d <= 0 {
			k.add(p, "must be positive, got %v", d)
		}
	}
	nonNegative(path{"keys", "publish_lead"}, c.Keys.PublishLead)
	positive(path{"keys", "rotation_period"}, c.Keys.RotationPeriod)
	positive(path{"keys", "expired_retention"}, c.Keys.ExpiredRetention)
	if c.Keys.RotationPeriod > 0 && c.Keys.PublishLead >= c.Keys.RotationPeriod {
		// Otherwise keys would be made faster than they are used, and
		// several unused ones would be published at once.
		k.add(path{"keys", "publish_lead"}, "%v must be shorter than rotation_period (%v)", c.Keys.PublishLead, c.Keys.RotationPeriod)
	}

	positive(path{"tokens", "access_token_lifetime"}, c.Tokens.AccessTokenLifetime)
	positive(path{"tokens", "refresh_token_lifetime"}, c.Tokens.RefreshTokenLifetime)

	positive(path{"client_assertion", "max_lifetime"}, c.ClientAssertion.MaxLifetime)
	if c.ClientAssertion.MaxLifetime > 60*time.Second {
		k.add(path{"client_assertion", "max_lifetime"}, "%v is longer than 60s, HelseID's limit", c.ClientAssertion.MaxLifetime)
	}
	nonNegative(path{"client_assertion", "clock_skew"}, c.ClientAssertion.ClockSkew)
	if c.ClientAssertion.ClockSkew > 5*time.Minute {
		k.add(path{"client_assertion", "clock_skew"}, "%v is longer than 5m", c.ClientAssertion.ClockSkew)
	}

	positive(path{"dpop", "nonce_slot"}, c.DPoP.NonceSlot)
	positive(path{"dpop", "proof_window"}, c.DPoP.ProofWindow)

	if c.HTTP.MaxBodyBytes <= 0 {
		k.add(path{"http", "max_body_bytes"}, "must be positive, got %d", c.HTTP.MaxBodyBytes)
	}
	positive(path{"http", "read_header_timeout"}, c.HTTP.ReadHeaderTimeout)
	positive(path{"http", "read_timeout"}, c.HTTP.ReadTimeout)
	positive(path{"http", "write_timeout"}, c.HTTP.WriteTimeout)
	positive(path{"http", "request_timeout"}, c.HTTP.RequestTimeout)
	if c.HTTP.RequestTimeout > 0 && c.HTTP.WriteTimeout > 0 && c.HTTP.RequestTimeout >= c.HTTP.WriteTimeout {
		// The answer of a request that used its whole deadline must
		// still be written before the connection's write deadline.
		k.add(path{"http", "request_timeout"}, "%v must be below http.write_timeout (%v)", c.HTTP.RequestTimeout, c.HTTP.WriteTimeout)
	}
	positive(path{"http", "idle_timeout"}, c.HTTP.IdleTimeout)
	positive(path{"http", "shutdown_timeout"}, c.HTTP.ShutdownTimeout)

	if !slices.Contains(logLevels, c.Log.Level) {
		k.add(path{"log", "level"}, "%q is not one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		k.add(path{"log", "format"}, "%q is not json or text", c.Log.Format)
	}
	positive(path{"registry_poll"}, c.RegistryPoll)
	nonNegative(path{"commit_delay"}, c.CommitDelay)
	if c.CommitDelay > maxCommitDelay {
		k.add(path{"commit_delay"}, "%v is more than %v: every token request could wait that long", c.CommitDelay, maxCommitDelay)
	}

	if c.Audit.HeadLogEveryRecords < 1 {
		k.add(path{"audit", "head_log_every_records"}, "must be at least 1, got %d", c.Audit.HeadLogEveryRecords)
	}
	switch d := c.Audit.HeadLogInterval; {
	case d < time.Second:
		k.add(path{"audit", "head_log_interval"}, "%v is shorter than 1s", d)
	case d > time.Hour:
		k.add(path{"audit", "head_log_interval"}, "%v is longer than 1h: records written since the last logged head could be removed unnoticed", d)
	}

	nonNegative(path{"audit", "retention"}, c.Audit.Retention)
	if r := c.Audit.Retention; r > 0 && r < 24*time.Hour {
		k.add(path{"audit", "retention"}, "%v is shorter than 24h (0 keeps every record)", r)
	}

	if strings.ContainsAny(c.Instance, "\x00\n\r") || len(c.Instance) > 200 {
		k.add(path{"instance"}, "must be one line of at most 200 characters")
	}
	for _, r := range []struct {
		name  string
		rate  float64
		burst int
	}{{"per_address", c.RateLimit.PerAddress, c.RateLimit.AddressBurst}, {"per_client", c.RateLimit.PerClient, c.RateLimit.ClientBurst}} {
		if r.rate < 0 {
			k.add(path{"rate_limit", r.name}, "must not be negative, got %v", r.rate)
		}
		if r.rate > 0 && r.burst < 1 {
			k.add(path{"rate_limit", r.name}, "its burst must be at least 1")
		}
	}
	if c.RateLimit.LoginPerMinute < 0 {
		k.add(path{"rate_limit", "login_per_minute"}, "must not be negative, got %d", c.RateLimit.LoginPerMinute)
	}
	if c.RateLimit.MaxAddresses < 1 {
		k.add(path{"rate_limit", "max_addresses"}, "must be at least 1, got %d", c.RateLimit.MaxAddresses)
	}
	if c.RateLimit.TrustForwardedFor {
		k.add(path{"rate_limit", "trust_forwarded_for"}, "is replaced by trusted_proxies: list the addresses or CIDRs of the proxies in front of Tillit, "+
			"and the source address becomes the rightmost X-Forwarded-For entry that is not one of them (the first entry is whatever the client sent)")
	}
	for i, s := range c.RateLimit.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			k.add(path{"rate_limit", "trusted_proxies", i}, "%v", err)
		}
	}
}

// parseProxy reads a trusted_proxies entry: an IP address or a CIDR prefix.
func parseProxy(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has bits set after its prefix length: did you mean %s?", s, p.Masked())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		// Peers and X-Forwarded-For entries are compared in their 4-byte
		// form.
		p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		if p.Bits() == 0 {
			return netip.Prefix{}, fmt.Errorf("%q covers every IPv4 address: any client could then choose its own source address", s)
		}
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q covers every address: any client could then choose its own source address", s)
	}
	return p, nil
}

// index remembers where each ID was first declared.
type index map[string]int

// declare records id at i and reports whether it was new.
func (x index) declare(id string, i int) (first int, isNew bool) {
	if j, ok := x[id]; ok {
		return j, false
	}
	x[id] = i
	return i, true
}

func (c *Config) checkRegistry(k *checker) {
	orgs := c.checkOrganizations(k)
	apis, scopeAPI := c.checkAPIs(k)
	systems := c.checkClientSystems(k, apis)
	clients := c.checkClients(k, orgs, apis, scopeAPI, systems)
	c.checkExchange(k, apis, clients)
	c.checkDelegations(k, apis)
	c.checkIdentityProviders(k)
	c.checkPersons(k)
	c.checkHPR(k)
}

func (c *Config) checkOrgNumber(k *checker, p path, number string) bool {
	if !helseid.ValidOrgNumber(number) {
		k.add(p, "%q is not a valid organisation number (nine digits, the last a mod-11 check digit)", number)
		return false
	}
	return true
}

func (c *Config) checkOrganizations(k *checker) index {
	orgs := make(index)
	for i, o := range c.Organizations {
		p := path{"organisations", i}
		if o.Number == "" {
			k.add(p.with("number"), "is required")
		} else if c.checkOrgNumber(k, p.with("number"), o.Number) {
			if j, ok := orgs.declare(o.Number, i); !ok {
				k.add(p.with("number"), "organisation %q is already declared at %s", o.Number, k.declaredAt("organisations", j, "number"))
			}
		}
		if o.Parent != "" && c.checkOrgNumber(k, p.with("parent"), o.Parent) && o.Parent == o.Number {
			k.add(p.with("parent"), "is the organisation itself")
		}
	}
	// A loop of parents would make "the legal entity of this sub-unit"
	// undefined.
	// Each loop is reported once, on its first member in the file.
	for i, o := range c.Organizations {
		if o.Parent == o.Number {
			continue // reported above
		}
		first := i
		seen := map[string]bool{o.Number: true}
		for cur := o.Parent; cur != ""; {
			j, ok := orgs[cur]
			if !ok {
				break
			}
			if seen[cur] {
				if cur == o.Number && first == i {
					k.add(path{"organisations", i, "parent"}, "parents of %q loop back to it", o.Number)
				}
				break
			}
			seen[cur] = true
			first = min(first, j)
			cur = c.Organizations[j].Parent
		}
	}
	return orgs
}

func (c *Config) checkAPIs(k *checker) (index, map[string]string) {
	apis := make(index)
	scopeAPI := make(map[string]string) // scope → audience
	for i, a := range c.APIs {
		p := path{"apis", i}
		audOK := false
		switch {
		case a.Audience == "":
			k.add(p.with("audience"), "is required")
		case !scopeToken(a.Audience) || strings.Contains(a.Audience, "/"):
			k.add(p.with("audience"), "%q must be one word without / (it is the part of a scope before the first /)", a.Audience)
		default:
			audOK = true
			if j, ok := apis.declare(a.Audience, i); !ok {
				k.add(p.with("audience"), "api %q is already declared at %s", a.Audience, k.declaredAt("apis", j, "audience"))
			}
		}
		if len(a.Scopes) == 0 {
			k.add(p.with("scopes"), "needs at least one scope")
		}
		seen := make(map[string]bool)
		for j, scope := range a.Scopes {
			sp := p.with("scopes", j)
			switch {
			case !scopeToken(scope):
				k.add(sp, "scope %q has characters a scope cannot have (RFC 6749 §3.3)", scope)
			case audOK && (!strings.HasPrefix(scope, a.Audience+"/") || scope == a.Audience+"/"):
				// HelseID profile §5.6: the audience is the part of a scope
				// before the first "/", which is how a scope finds its API.
				k.add(sp, "scope %q must start with %q", scope, a.Audience+"/")
			case seen[scope]:
				k.add(sp, "scope %q is listed twice", scope)
			case scopeAPI[scope] != "" && scopeAPI[scope] != a.Audience:
				k.add(sp, "scope %q is also declared by api %q", scope, scopeAPI[scope])
			default:
				scopeAPI[scope] = a.Audience
			}
			seen[scope] = true
		}
		seenClaim := make(map[string]bool)
		for j, name := range a.ClientClaims {
			cp := p.with("client_claims", j)
			switch {
			case slices.Contains(builtinClaims, name):
			case !claimNameRE.MatchString(name):
				k.add(cp, "%q is not %s, %s or a claim name such as sfm-id", name, helseid.WantOrgNrSupplier, helseid.WantSFMJournalID)
			}
			if seenClaim[name] {
				k.add(cp, "claim %q is listed twice", name)
			}
			seenClaim[name] = true
		}
		if !validStatus(a.Status) {
			k.add(p.with("status"), "%q is not active, pending or disabled", a.Status)
		}
		if a.AccessTokenLifetime < 0 {
			k.add(p.with("access_token_lifetime"), "must not be negative, got %v", a.AccessTokenLifetime)
		}
	}
	return apis, scopeAPI
}

func (c *Config) checkClientSystems(k *checker, apis index) index {
	systems := make(index)
	for i, s := range c.ClientSystems {
		p := path{"client_systems", i}
		switch {
		case s.ID == "":
			k.add(p.with("id"), "is required")
		case !validID(s.ID):
			k.add(p.with("id"), "%q has white space or characters outside visible ASCII", s.ID)
		default:
			if j, ok := systems.declare(s.ID, i); !ok {
				k.add(p.with("id"), "client system %q is already declared at %s", s.ID, k.declaredAt("client_systems", j, "id"))
			}
		}
		if s.Supplier == "" {
			k.add(p.with("supplier"), "is required: the supplier's organisation number")
		} else {
			c.checkOrgNumber(k, p.with("supplier"), s.Supplier)
		}
		seen := make(map[string]bool)
		for j, aud := range s.APIs {
			if _, ok := apis[aud]; !ok {
				k.add(p.with("apis", j), "api %q is not declared", aud)
			}
			if seen[aud] {
				k.add(p.with("apis", j), "api %q is listed twice", aud)
			}
			seen[aud] = true
		}
		if !validStatus(s.Status) {
			k.add(p.with("status"), "%q is not active, pending or disabled", s.Status)
		}
	}
	return systems
}

func (c *Config) checkClients(k *checker, orgs, apis index, scopeAPI map[string]string, systems index) index {
	ids := make(index)
	for i := range c.Clients {
		cl := &c.Clients[i]
		p := path{"clients", i}
		switch {
		case cl.ID == "":
			k.add(p.with("id"), "is required")
		case !validID(cl.ID):
			k.add(p.with("id"), "%q has white space or characters outside visible ASCII", cl.ID)
		default:
			if j, ok := ids.declare(cl.ID, i); !ok {
				k.add(p.with("id"), "client %q is already declared at %s", cl.ID, k.declaredAt("clients", j, "id"))
			}
		}

		var system *ClientSystem
		if cl.System == "" {
			k.add(p.with("system"), "is required: the id of a client system")
		} else if j, ok := systems[cl.System]; ok {
			system = &c.ClientSystems[j]
		} else {
			k.add(p.with("system"), "client system %q is not declared", cl.System)
		}

		switch cl.Tenancy {
		case "", store.SingleTenant:
			c.checkSingleTenant(k, p, cl, orgs)
		case store.MultiTenant:
			// HelseID profile §6.1: a multi-tenant client names the
			// organisation it acts for in each request.
			if cl.Organization != "" {
				k.add(p.with("organisation"), "a multi-tenant client has no fixed organisation; it names one per request")
			}
			if len(cl.ChildOrganizations) > 0 {
				k.add(p.with("child_organisations"), "a multi-tenant client has no list of child organisations")
			}
		default:
			k.add(p.with("tenancy"), "%q is not single-tenant or multi-tenant", cl.Tenancy)
		}

		_, keyErrs := c.clientKeys(i)
		k.errs = append(k.errs, keyErrs...)

		seen := make(map[string]bool)
		for j, g := range cl.GrantTypes {
			if !slices.Contains(grantTypes, g) {
				k.add(p.with("grant_types", j), "%q is not one of %s", g, strings.Join(grantTypes, ", "))
			}
			if seen[g] {
				k.add(p.with("grant_types", j), "%q is listed twice", g)
			}
			seen[g] = true
		}

		if len(cl.Scopes) == 0 {
			k.add(p.with("scopes"), "needs at least one scope")
		}
		seen = make(map[string]bool)
		for j, scope := range cl.Scopes {
			sp := p.with("scopes", j)
			aud, ok := scopeAPI[scope]
			switch {
			case !ok:
				k.add(sp, "scope %q is not declared by any api", scope)
			case !declared(apis, aud):
				// Its API is broken, which is reported on the API.
			case system != nil && len(system.APIs) > 0 && !slices.Contains(system.APIs, aud):
				k.add(sp, "scope %q belongs to api %q, which client system %q does not list", scope, aud, system.ID)
			}
			if seen[scope] {
				k.add(sp, "scope %q is listed twice", scope)
			}
			seen[scope] = true
		}

		for _, aud := range sortedKeys(cl.Claims) {
			ap := p.with("claims", aud)
			j, ok := apis[aud]
			if !ok {
				k.add(ap, "api %q is not declared", aud)
				continue
			}
			wants := c.APIs[j].ClientClaims
			for _, name := range sortedKeys(cl.Claims[aud]) {
				np := ap.with(name)
				switch {
				case slices.Contains(builtinClaims, name):
					k.add(np, "%q is filled in by the token service, not set per client", name)
				case !slices.Contains(wants, name):
					k.add(np, "api %q does not list %q in client_claims", aud, name)
				case cl.Claims[aud][name] == "":
					k.add(np, "has no value")
				}
			}
		}

		c.checkLogin(k, p, cl)

		if !validStatus(cl.Status) {
			k.add(p.with("status"), "%q is not active, pending or disabled", cl.Status)
		}
		if cl.AccessTokenLifetime < 0 {
			k.add(p.with("access_token_lifetime"), "must not be negative, got %v", cl.AccessTokenLifetime)
		}
		switch {
		case cl.RefreshTokenLifetime < 0:
			k.add(p.with("refresh_token_lifetime"), "must not be negative, got %v", cl.RefreshTokenLifetime)
		case cl.RefreshTokenLifetime > 0 && !slices.Contains(cl.GrantTypes, oauth.GrantTypeRefreshToken):
			k.add(p.with("refresh_token_lifetime"), "is set, but only clients with the %s grant get refresh tokens", oauth.GrantTypeRefreshToken)
		}
	}
	return ids
}

// checkExchange checks who may exchange whose tokens: API owners and
// client exchange actors name clients of the file, and the claims an API
// accepts from subject tokens are claims some API's tokens can carry.
func (c *Config) checkExchange(k *checker, apis, clients index) {
	clientList := func(p path, ids []string) {
		seen := make(map[string]bool)
		for j, id := range ids {
			if !declared(clients, id) {
				k.add(p.with(j), "client %q is not declared", id)
			}
			if seen[id] {
				k.add(p.with(j), "client %q is listed twice", id)
			}
			seen[id] = true
		}
	}
	for i, a := range c.APIs {
		p := path{"apis", i}
		clientList(p.with("owners"), a.Owners)
		if a.ExchangeByDefault && len(a.Owners) == 0 {
			k.add(p.with("exchange_by_default"), "lets the owners exchange any client's tokens, but the api has no owners")
		}
		seen := make(map[string]bool)
		for j, name := range a.SubjectClaims {
			cp := p.with("subject_claims", j)
			if seen[name] {
				k.add(cp, "claim %q is listed twice", name)
			}
			seen[name] = true
			if name == helseid.ClaimSFMJournalID {
				continue
			}
			aud, short, ok := strings.Cut(name, "/client/claims/")
			if !ok || short == "" || !claimNameRE.MatchString(short) {
				k.add(cp, "%q is not %s or an API-specific claim <audience>/client/claims/<name>", name, helseid.ClaimSFMJournalID)
				continue
			}
			j, ok := apis[aud]
			switch {
			case !ok:
				k.add(cp, "api %q is not declared", aud)
			case !slices.Contains(c.APIs[j].ClientClaims, short):
				// No token of that API carries it, so accepting it
				// would only mislead the reader of the file.
				k.add(cp, "api %q does not list %q in client_claims, so no subject token carries it", aud, short)
			}
		}
	}
	for i, cl := range c.Clients {
		clientList(path{"clients", i, "exchange_actors"}, cl.ExchangeActors)
	}
}

// checkDelegations checks the delegation registry: valid numbers, declared
// APIs, one delegation per pair.
func (c *Config) checkDelegations(k *checker, apis index) {
	pairs := make(index)
	for i, d := range c.Delegations {
		p := path{"delegations", i}
		orgOK, supplierOK := false, false
		if d.Organization == "" {
			k.add(p.with("organisation"), "is required: the number of the delegating organisation")
		} else {
			orgOK = c.checkOrgNumber(k, p.with("organisation"), d.Organization)
		}
		if d.Supplier == "" {
			k.add(p.with("supplier"), "is required: the number of the supplier the right is delegated to")
		} else {
			supplierOK = c.checkOrgNumber(k, p.with("supplier"), d.Supplier)
		}
		if orgOK && supplierOK {
			if j, ok := pairs.declare(store.DelegationKey(d.Organization, d.Supplier), i); !ok {
				k.add(p, "the delegation from %q to %q is already declared at %s", d.Organization, d.Supplier, k.declaredAt("delegations", j))
			}
		}
		seen := make(map[string]bool)
		for j, aud := range d.APIs {
			if !declared(apis, aud) {
				k.add(p.with("apis", j), "api %q is not declared", aud)
			}
			if seen[aud] {
				k.add(p.with("apis", j), "api %q is listed twice", aud)
			}
			seen[aud] = true
		}
		switch d.Status {
		case "", store.StatusActive, store.StatusDisabled:
		default:
			k.add(p.with("status"), "%q is not active or disabled", d.Status)
		}
	}
}

// idpNameRE is an identity provider's name: a token that can stand in a
// URL path and a log line as it is.
var idpNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (c *Config) checkIdentityProviders(k *checker) {
	names := make(index)
	for i, p := range c.IdentityProviders {
		pp := path{"identity_providers", i}
		switch {
		case p.Name == "":
			k.add(pp.with("name"), "is required")
		case !idpNameRE.MatchString(p.Name):
			k.add(pp.with("name"), "%q is not a name of letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)", p.Name)
		default:
			if j, ok := names.declare(p.Name, i); !ok {
				k.add(pp.with("name"), "identity provider %q is already declared at %s", p.Name, k.declaredAt("identity_providers", j, "name"))
			}
		}
		switch p.Type {
		case store.IdentityProviderTestIdP:
			if set := p.upstreamSet(); len(set) > 0 {
				k.add(pp.with(set[0]), "is only for type oidc")
			}
			// TestIDP logs anyone in as anyone.
			if !c.Test() {
				k.add(pp.with("type"), "testidp logs anyone in as anyone: it is allowed only with environment: test")
			}
		case store.IdentityProviderOIDC:
			c.checkUpstream(k, pp, &p)
		case "":
			k.add(pp.with("type"), "is required: %s or %s", store.IdentityProviderTestIdP, store.IdentityProviderOIDC)
		default:
			k.add(pp.with("type"), "%q is not %s or %s", p.Type, store.IdentityProviderTestIdP, store.IdentityProviderOIDC)
		}
		// It is shown in tables and on login pages.
		if strings.ContainsFunc(p.DisplayName, unicode.IsControl) || len(p.DisplayName) > 200 {
			k.add(pp.with("display_name"), "must be at most 200 characters without line breaks, tabs or other control characters")
		}
	}
}

// upstreamSet lists the settings of type oidc that p sets.
func (p *IdentityProvider) upstreamSet() []string {
	var set []string
	for name, v := range map[string]bool{
		"issuer": p.Issuer != "", "client_id": p.ClientID != "",
		"auth": p.Auth != "", "algorithm": p.Algorithm != "", "private_key_file": p.PrivateKeyFile != "",
		"client_secret_env": p.ClientSecretEnv != "", "name_claim": p.NameClaim != "",
		"client_secret_file": p.ClientSecretFile != "", "scopes": len(p.Scopes) > 0,
		"acr_values": len(p.ACRValues) > 0, "pid_claim": p.PIDClaim != "", "amr_claim": p.AMRClaim != "",
		"acr_claim": p.ACRClaim != "", "given_name_claim": p.GivenNameClaim != "",
		"middle_name_claim": p.MiddleNameClaim != "", "family_name_claim": p.FamilyNameClaim != "",
	} {
		if v {
			set = append(set, name)
		}
	}
	slices.Sort(set)
	return set
}

// upstreamACR are the acr_values Tillit knows the level of.
var upstreamACR = map[string]bool{
	"idporten-loa-high": true, "idporten-loa-substantial": true, "Level4": true, "Level3": true, "High": true, "Substantial": true,
}

// checkUpstream checks an oidc provider: where it is, who Tillit is there,
// and that the secret it names can be read now rather than at the first
// login.
//
// A provider with none of the oidc settings is a placeholder: listed, but
// it offers no login until it is configured.
func (c *Config) checkUpstream(k *checker, pp path, p *IdentityProvider) {
	if len(p.upstreamSet()) == 0 {
		return
	}
	switch u, err := url.Parse(p.Issuer); {
	case p.Issuer == "":
		k.add(pp.with("issuer"), "is required for type oidc")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		k.add(pp.with("issuer"), "%q is not an issuer URL (absolute, without query or fragment)", p.Issuer)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		// Nothing crosses a network: a provider on the same machine.
	default:
		k.add(pp.with("issuer"), "must be an https URL (http only to a loopback address)")
	}
	if p.ClientID == "" {
		k.add(pp.with("client_id"), "is required for type oidc")
	}
	c.checkUpstreamAuth(k, pp, p)
	if len(p.Scopes) > 0 && !slices.Contains(p.Scopes, "openid") {
		k.add(pp.with("scopes"), "must contain openid")
	}
	for j, a := range p.ACRValues {
		if !upstreamACR[a] {
			k.add(pp.with("acr_values", j), "%q is not a level Tillit knows (idporten-loa-high, idporten-loa-substantial, Level4, Level3, High, Substantial)", a)
		}
	}
}

// checkUpstreamAuth checks Tillit's credential at an oidc provider: a key
// of its own (private_key_jwt) or a client secret by reference, which
// must be readable now rather than at the first login.
func (c *Config) checkUpstreamAuth(k *checker, pp path, p *IdentityProvider) {
	if p.PrivateKeyFile != "" {
		k.add(pp.with("private_key_file"), "is no longer read: set auth: private_key_jwt, and Tillit makes the key and keeps it sealed in the store; `tillit idp jwks %s` prints its public key to register at the provider", p.Name)
		return
	}
	secrets := 0
	for _, v := range []string{p.ClientSecretEnv, p.ClientSecretFile} {
		if v != "" {
			secrets++
		}
	}
	switch p.Auth {
	case store.UpstreamAuthPrivateKeyJWT:
		if secrets > 0 {
			k.add(pp, "auth private_key_jwt takes no client_secret_env or client_secret_file")
		}
		if a := jose.SignatureAlgorithm(p.Algorithm); a != "" && !slices.Contains(servicekeys.UpstreamAlgorithms, a) {
			k.add(pp.with("algorithm"), "%q is not RS256, PS256 or ES256", p.Algorithm)
		}
		return
	case "", store.UpstreamAuthClientSecret:
	default:
		k.add(pp.with("auth"), "%q is not %s or %s", p.Auth, store.UpstreamAuthPrivateKeyJWT, store.UpstreamAuthClientSecret)
		return
	}
	if p.Algorithm != "" {
		k.add(pp.with("algorithm"), "applies to auth: private_key_jwt only")
	}
	switch {
	case secrets != 1:
		k.add(pp, "needs exactly one client credential: auth: private_key_jwt, client_secret_env or client_secret_file")
	case p.ClientSecretEnv != "":
		if os.Getenv(p.ClientSecretEnv) == "" {
			k.add(pp.with("client_secret_env"), "environment variable %s is not set", p.ClientSecretEnv)
		}
	case p.ClientSecretFile != "":
		if b, err := os.ReadFile(p.ClientSecretFile); err != nil {
			k.add(pp.with("client_secret_file"), "%v", err)
		} else if len(bytes.TrimSpace(b)) == 0 {
			k.add(pp.with("client_secret_file"), "%s is empty", p.ClientSecretFile)
		}
	}
}

// checkLogin checks what a client needs to log people in: redirect URIs,
// identity scopes, and somewhere for the person to log in.
func (c *Config) checkLogin(k *checker, p path, cl *Client) {
	login := slices.Contains(cl.GrantTypes, oauth.GrantTypeAuthorizationCode)
	uris := func(name string, list []string) {
		seen := make(map[string]bool)
		for j, u := range list {
			if err := oauth.CheckRedirectURI(u); err != nil {
				k.add(p.with(name, j), "%q %v", u, err)
			}
			if seen[u] {
				k.add(p.with(name, j), "%q is listed twice", u)
			}
			seen[u] = true
		}
		if len(list) > 0 && !login {
			k.add(p.with(name), "is set, but only clients with the %s grant log people in", oauth.GrantTypeAuthorizationCode)
		}
	}
	uris("redirect_uris", cl.RedirectURIs)
	uris("post_logout_redirect_uris", cl.PostLogoutRedirectURIs)
	seen := make(map[string]bool)
	for j, s := range cl.IdentityScopes {
		switch {
		case !slices.Contains(identityScopes, s):
			k.add(p.with("identity_scopes", j), "%q is not one of %s", s, strings.Join(identityScopes, ", "))
		case seen[s]:
			k.add(p.with("identity_scopes", j), "%q is listed twice", s)
		case s == "offline_access" && !slices.Contains(cl.GrantTypes, oauth.GrantTypeRefreshToken):
			k.add(p.with("identity_scopes", j), "offline_access asks for a refresh token: the client needs the %s grant", oauth.GrantTypeRefreshToken)
		}
		seen[s] = true
	}
	if len(cl.IdentityScopes) > 0 && !login {
		k.add(p.with("identity_scopes"), "is set, but only clients with the %s grant log people in", oauth.GrantTypeAuthorizationCode)
	}
	if cl.RequirePAR != nil && !login {
		k.add(p.with("require_par"), "is set, but only clients with the %s grant send authorization requests", oauth.GrantTypeAuthorizationCode)
	}
	if alg := cl.IDTokenSignedResponseAlg; alg != "" {
		if !idtoken.Supported(alg) {
			why := ""
			switch {
			case strings.EqualFold(string(alg), "none"):
				why = " (an unsigned ID token proves nothing)"
			case strings.HasPrefix(strings.ToUpper(string(alg)), "HS"):
				why = " (an HMAC would be keyed with a secret the client holds, so the client could forge ID tokens)"
			}
			k.add(p.with("id_token_signed_response_alg"), "client %q asks for ID tokens signed with %q%s: use one of %s, or leave it out for %s",
				cl.ID, alg, why, strings.Join(jws.AlgorithmNames(idtoken.Algorithms), ", "), idtoken.DefaultAlgorithm)
		}
		if !login {
			k.add(p.with("id_token_signed_response_alg"), "is set, but only clients with the %s grant get ID tokens", oauth.GrantTypeAuthorizationCode)
		}
	}
	if cl.AllowLoopbackAnyPort {
		// Any port on this machine is any program on it.
		if !c.Test() {
			k.add(p.with("allow_loopback_any_port"), "is allowed only with environment: test")
		}
		loopback := false
		for _, u := range cl.RedirectURIs {
			if pu, err := url.Parse(u); err == nil && pu.Scheme == "http" && oauth.LoopbackHost(pu.Hostname()) {
				loopback = true
			}
		}
		if !loopback {
			k.add(p.with("allow_loopback_any_port"), "is set, but no redirect URI is an http loopback URI")
		}
	}
	if !login {
		return
	}
	if len(cl.RedirectURIs) == 0 {
		k.add(p.with("redirect_uris"), "the %s grant needs at least one redirect URI", oauth.GrantTypeAuthorizationCode)
	}
	enabled := false
	for _, idp := range c.IdentityProviders {
		if idp.Enabled == nil || *idp.Enabled {
			enabled = true
		}
	}
	if !enabled {
		k.add(p.with("grant_types"), "%s needs an enabled identity provider (identity_providers) for people to log in with", oauth.GrantTypeAuthorizationCode)
	}
}

func declared(x index, id string) bool {
	_, ok := x[id]
	return ok
}

func (c *Config) checkSingleTenant(k *checker, p path, cl *Client, orgs index) {
	// HelseID profile §6.1: a single-tenant client is bound to one
	// organisation, which becomes orgnr_parent in its tokens.
	orgOK := false
	if cl.Organization == "" {
		k.add(p.with("organisation"), "a single-tenant client needs its organisation number")
	} else {
		orgOK = c.checkOrgNumber(k, p.with("organisation"), cl.Organization)
	}
	seen := make(map[string]bool)
	for j, child := range cl.ChildOrganizations {
		cp := p.with("child_organisations", j)
		if !c.checkOrgNumber(k, cp, child) {
			continue
		}
		switch {
		case child == cl.Organization:
			k.add(cp, "%q is the client's own organisation", child)
		case seen[child]:
			k.add(cp, "%q is listed twice", child)
		default:
			// Only a declared child with a sound parent can contradict the
			// client; a broken parent is reported on the organisation.
			if o, ok := orgs[child]; ok && orgOK {
				parent := c.Organizations[o].Parent
				if parent != "" && parent != child && helseid.ValidOrgNumber(parent) && parent != cl.Organization {
					k.add(cp, "%q belongs to %q, not to the client's organisation %q", child, parent, cl.Organization)
				}
			}
		}
		seen[child] = true
	}
}

// clientKeys parses the inline and file keys of client i. Problems carry
// the line of jwks or jwks_file.
func (c *Config) clientKeys(i int) ([]jose.JSONWebKey, Errors) {
	cl := &c.Clients[i]
	if p := cl.parsed; p != nil && bytes.Equal(p.jwks, cl.JWKS) && p.file == cl.JWKSFile {
		return p.keys, p.errs
	}
	keys, errs := c.parseClientKeys(i)
	cl.parsed = &parsedKeys{jwks: cl.JWKS, file: cl.JWKSFile, keys: keys, errs: errs}
	if len(errs) == 0 {
		cl.parsed.stored, cl.parsed.storedErr = registry.MarshalJWKS(keys)
	}
	return keys, errs
}

func (c *Config) parseClientKeys(i int) ([]jose.JSONWebKey, Errors) {
	cl := &c.Clients[i]
	p := path{"clients", i}
	var errs Errors
	var all []jose.JSONWebKey
	if len(cl.JWKS) > 0 {
		keys, err := registry.ParseJWKS(cl.JWKS)
		errs = append(errs, c.jwksErrors(p.with("jwks"), err)...)
		all = append(all, keys...)
	}
	if cl.JWKSFile != "" {
		fp := p.with("jwks_file")
		data, err := cl.keyFile(c.src)
		if err != nil {
			errs = append(errs, c.src.errorAt(fp, err, "%v", err))
		} else {
			keys, err := registry.ParseJWKS(data)
			errs = append(errs, c.jwksErrors(fp, err)...)
			for _, key := range keys {
				dup := slices.IndexFunc(all, func(a jose.JSONWebKey) bool { return a.KeyID == key.KeyID || sameKey(a, key) })
				if dup >= 0 {
					errs = append(errs, c.src.errorAt(fp, nil, "key %q is also in jwks", key.KeyID))
					continue
				}
				all = append(all, key)
			}
		}
	}
	if len(all) == 0 && len(errs) == 0 {
		errs = append(errs, c.src.errorAt(p, nil, "needs public keys: set jwks or jwks_file"))
	}
	return all, errs
}

func sameKey(a, b jose.JSONWebKey) bool {
	ta, errA := jws.Thumbprint(&a)
	tb, errB := jws.Thumbprint(&b)
	return errA == nil && errB == nil && ta == tb
}

func (c *Config) jwksErrors(p path, err error) Errors {
	if err == nil {
		return nil
	}
	list := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		list = joined.Unwrap()
	}
	var errs Errors
	for _, e := range list {
		var je *registry.JWKSError
		if errors.As(e, &je) {
			errs = append(errs, c.src.errorAt(p, e, "%s%s", je.Where(), je.Reason))
		} else {
			errs = append(errs, c.src.errorAt(p, e, "%v", e))
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// maxCommitDelay bounds commit_delay: a delay is paid by requests, and a
// few milliseconds already take most of what batching can give.
const maxCommitDelay = 50 * time.Millisecond
