package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/tlstest"
)

// testKeys are public JWKs generated once for all tests.
type testKeys struct {
	ec, ec2, rsa, rsa1024, ecPrivate string
	ecNoKID                          string
}

var keys = func() testKeys {
	pub := func(k any, kid, alg string) string {
		b, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg, Use: "sig"})
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	r, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	return testKeys{
		ec:        pub(ec.Public(), "ec-1", "ES256"),
		ec2:       pub(ec2.Public(), "ec-2", ""),
		rsa:       pub(r.Public(), "rsa-1", "PS256"),
		rsa1024:   pub(small.Public(), "rsa-small", ""),
		ecPrivate: pub(ec, "ec-private", "ES256"),
		ecNoKID:   pub(ec2.Public(), "", ""),
	}
}()

// base is a valid configuration every table row breaks in one place. The
// placeholder <EC-KEY> is filled in by writeConfig.
const base = `issuer: https://sts.example.org
listen: 127.0.0.1:8080
keys:
  algorithm: RS256
  publish_lead: 24h
  rotation_period: 2160h
  expired_retention: 2160h
tokens:
  access_token_lifetime: 1h
client_assertion:
  max_lifetime: 60s
  clock_skew: 10s
dpop:
  nonce_slot: 60s
  proof_window: 60s
http:
  max_body_bytes: 8192
  read_timeout: 10s
log:
  level: info
  format: json
registry_poll: 2s
apis:
  - audience: nhn:deft
    scopes: [nhn:deft/api]
    status: active
  - audience: e-helse:sfm.api
    scopes: [e-helse:sfm.api/sfm.api]
    client_claims: [sfm-id, orgnr_supplier]
    owners: [single]
  - audience: e-helse:rf
    scopes: [e-helse:rf/api]
    subject_claims: [e-helse:sfm.api/client/claims/sfm-id, nhn:sfm:journal-id]
organisations:
  - number: "310202029"
    name: Supplier
  - number: "310303038"
    name: Customer
  - number: "310404047"
    name: Customer child
    parent: "310303038"
client_systems:
  - id: sys
    supplier: "310202029"
    apis: [nhn:deft, e-helse:sfm.api]
    status: active
  - id: deft-only
    supplier: "310202029"
    apis: [nhn:deft]
clients:
  - id: single
    system: sys
    tenancy: single-tenant
    organisation: "310303038"
    child_organisations: ["310404047"]
    grant_types: [client_credentials]
    scopes: [nhn:deft/api]
    status: active
    jwks: {"keys": [<EC-KEY>]}
  - id: multi
    system: sys
    tenancy: multi-tenant
    scopes: [e-helse:sfm.api/sfm.api]
    jwks_file: keys.json
    grant_types: [client_credentials, refresh_token]
    refresh_token_lifetime: 8h
    exchange_actors: [single]
    claims:
      e-helse:sfm.api:
        sfm-id: 0c4c1b49-6a8e-4c2f-9d3b-5e7f1a2b3c4d
delegations:
  - organisation: "310303038"
    supplier: "310202029"
    apis: [e-helse:sfm.api]
identity_providers:
  - name: testidp-oidc
    type: testidp
    display_name: Test login
  - name: idporten
    type: oidc
    enabled: false
persons:
  - pid: "06828399789"
    given_name: Kvart
    family_name: Grevling
  - pid: "17056600574"
    given_name: Ola
    middle_name: Åge
    family_name: Nordmann
hpr:
  - number: "565505933"
    pid: "06828399789"
    approvals:
      - profession: LE
        requisition_rights: [{value: "1", description: Full rekvisisjonsrett}]
        specialities: [{value: "1", description: Allmennmedisin}]
# TestIDP and the synthetic pids above need a test environment.
environment: test
`

// writeConfig writes doc and keys.json (holding fileKeys, by default the
// RSA key) to a temporary folder and returns the config file's path.
func writeConfig(t *testing.T, doc, fileKeys string) string {
	t.Helper()
	if fileKeys == "" {
		fileKeys = `{"keys": [` + keys.rsa + `]}`
	}
	dir := t.TempDir()
	doc = strings.ReplaceAll(doc, "<EC-KEY>", keys.ec)
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(fileKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "tillit.yaml")
	if err := os.WriteFile(name, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// clearEnv keeps the machine's environment out of the tests.
func clearEnv(t *testing.T) {
	t.Setenv(EnvKeyEncryptionKey, "")
	t.Setenv(EnvStorage, "")
}

func TestBaseIsValid(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeConfig(t, base, ""))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, err := c.Registry(); err != nil {
		t.Fatalf("Registry: %v", err)
	}
}

// TestValidationRules breaks base in one place per row and expects exactly
// that one problem.
func TestValidationRules(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name     string
		old, new string // replace the first old in base with new
		fileKeys string // contents of keys.json; default: one RSA key
		wantErr  string
	}{
		// Server settings.
		{name: "issuer missing", old: "issuer: https://sts.example.org\n", new: "", wantErr: "issuer: is required"},
		{name: "issuer http", old: "https://sts.example.org", new: "http://sts.example.org", wantErr: "must use https"},
		{name: "issuer other scheme", old: "https://sts.example.org", new: "ftp://sts.example.org", wantErr: "is not an https URL"},
		{name: "issuer trailing slash", old: "https://sts.example.org", new: "https://sts.example.org/", wantErr: "must not end with /"},
		{name: "issuer query", old: "https://sts.example.org", new: "https://sts.example.org?x=1", wantErr: "must not have a query or fragment"},
		{name: "issuer fragment", old: "https://sts.example.org", new: "https://sts.example.org#x", wantErr: "must not have a query or fragment"},
		{name: "issuer user info", old: "https://sts.example.org", new: "https://u:p@sts.example.org", wantErr: "must not carry a user name"},
		{name: "issuer no host", old: "https://sts.example.org", new: "https:///x", wantErr: "has no host"},
		{name: "listen not host:port", old: "listen: 127.0.0.1:8080", new: "listen: localhost", wantErr: `listen: "localhost" is not host:port`},
		{name: "listen port not a number", old: "listen: 127.0.0.1:8080", new: "listen: 127.0.0.1:http", wantErr: `port "http" is not a number`},
		{name: "storage scheme", old: "listen: 127.0.0.1:8080", new: "listen: 127.0.0.1:8080\nstorage: mysql://db/tillit", wantErr: `scheme "mysql" is not supported`},
		{name: "storage sqlite without path", old: "listen: 127.0.0.1:8080", new: "listen: 127.0.0.1:8080\nstorage: 'sqlite:'", wantErr: "sqlite: URL has no file path"},
		{name: "storage sqlite options", old: "listen: 127.0.0.1:8080", new: "listen: 127.0.0.1:8080\nstorage: sqlite:x.db?mode=ro", wantErr: "URL options are not supported"},
		{name: "storage bad postgres URL", old: "listen: 127.0.0.1:8080", new: "listen: 127.0.0.1:8080\nstorage: postgres://u:pw@[::1/db", wantErr: "is not a valid PostgreSQL URL"},
		{name: "data_dir empty", old: "listen: 127.0.0.1:8080", new: "listen: 127.0.0.1:8080\ndata_dir: ''", wantErr: "data_dir: is empty"},
		{name: "signing algorithm", old: "algorithm: RS256", new: "algorithm: HS256", wantErr: `keys.algorithm: "HS256" is not one of RS256, PS256, ES256`},
		{name: "publish lead negative", old: "publish_lead: 24h", new: "publish_lead: -1h", wantErr: "keys.publish_lead: must not be negative"},
		{name: "publish lead not shorter than rotation", old: "publish_lead: 24h", new: "publish_lead: 2160h", wantErr: "must be shorter than rotation_period"},
		{name: "rotation period zero", old: "rotation_period: 2160h", new: "rotation_period: 0s", wantErr: "keys.rotation_period: must be positive"},
		{name: "expired retention zero", old: "expired_retention: 2160h", new: "expired_retention: 0s", wantErr: "keys.expired_retention: must be positive"},
		{name: "access token lifetime zero", old: "access_token_lifetime: 1h", new: "access_token_lifetime: 0s", wantErr: "tokens.access_token_lifetime: must be positive"},
		{name: "assertion lifetime over 60s", old: "max_lifetime: 60s", new: "max_lifetime: 61s", wantErr: "longer than 60s"},
		{name: "assertion lifetime zero", old: "max_lifetime: 60s", new: "max_lifetime: 0s", wantErr: "client_assertion.max_lifetime: must be positive"},
		{name: "clock skew negative", old: "clock_skew: 10s", new: "clock_skew: -1s", wantErr: "client_assertion.clock_skew: must not be negative"},
		{name: "clock skew huge", old: "clock_skew: 10s", new: "clock_skew: 1h", wantErr: "is longer than 5m"},
		{name: "nonce slot zero", old: "nonce_slot: 60s", new: "nonce_slot: 0s", wantErr: "dpop.nonce_slot: must be positive"},
		{name: "proof window negative", old: "proof_window: 60s", new: "proof_window: -60s", wantErr: "dpop.proof_window: must be positive"},
		{name: "max body zero", old: "max_body_bytes: 8192", new: "max_body_bytes: 0", wantErr: "http.max_body_bytes: must be positive"},
		{name: "timeout zero", old: "read_timeout: 10s", new: "read_timeout: 0s", wantErr: "http.read_timeout: must be positive"},
		{name: "request timeout zero", old: "read_timeout: 10s", new: "read_timeout: 10s\n  request_timeout: 0s", wantErr: "http.request_timeout: must be positive"},
		{name: "request timeout not below write timeout", old: "read_timeout: 10s", new: "read_timeout: 10s\n  write_timeout: 4s\n  request_timeout: 4s", wantErr: "http.request_timeout: 4s must be below http.write_timeout (4s)"},
		{name: "log level", old: "level: info", new: "level: verbose", wantErr: `log.level: "verbose" is not one of debug, info, warn, error`},
		{name: "log format", old: "format: json", new: "format: xml", wantErr: `log.format: "xml" is not json or text`},
		{name: "registry poll zero", old: "registry_poll: 2s", new: "registry_poll: 0s", wantErr: "registry_poll: must be positive"},
		{name: "negative commit delay", old: "registry_poll: 2s", new: "registry_poll: 2s\ncommit_delay: -1ms", wantErr: "commit_delay: must not be negative"},
		{name: "commit delay too long", old: "registry_poll: 2s", new: "registry_poll: 2s\ncommit_delay: 1s", wantErr: "commit_delay: 1s is more than 50ms"},
		{name: "negative rate limit", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {per_client: -1}", wantErr: "rate_limit.per_client: must not be negative"},
		{name: "max addresses zero", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {max_addresses: 0}", wantErr: "rate_limit.max_addresses: must be at least 1, got 0"},
		{name: "old trust_forwarded_for", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trust_forwarded_for: true}", wantErr: "rate_limit.trust_forwarded_for: is replaced by trusted_proxies: list the addresses or CIDRs of the proxies in front of Tillit"},
		{name: "trusted proxy not an address", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: [10.0.0.1, nginx]}", wantErr: `rate_limit.trusted_proxies[1]: "nginx" is not an IP address or CIDR prefix`},
		{name: "trusted proxy bad prefix", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: [10.0.0.0/33]}", wantErr: `rate_limit.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR prefix`},
		{name: "trusted proxy with a zone", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: ['fe80::1%eth0']}", wantErr: `"fe80::1%eth0" is not an IP address or CIDR prefix`},
		{name: "trusted proxy host bits", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: [10.1.2.3/8]}", wantErr: `"10.1.2.3/8" has bits set after its prefix length: did you mean 10.0.0.0/8?`},
		{name: "trusted proxies every IPv4", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: [0.0.0.0/0]}", wantErr: `"0.0.0.0/0" covers every address: any client could then choose its own source address`},
		{name: "trusted proxies every IPv6", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: ['::/0']}", wantErr: `"::/0" covers every address`},
		{name: "trusted proxies every mapped IPv4", old: "registry_poll: 2s", new: "registry_poll: 2s\nrate_limit: {trusted_proxies: ['::ffff:0.0.0.0/96']}", wantErr: `"::ffff:0.0.0.0/96" covers every IPv4 address`},
		{name: "audit head every 0 records", old: "registry_poll: 2s", new: "registry_poll: 2s\naudit: {head_log_every_records: 0}", wantErr: "audit.head_log_every_records: must be at least 1, got 0"},
		{name: "audit head interval too short", old: "registry_poll: 2s", new: "registry_poll: 2s\naudit: {head_log_interval: 100ms}", wantErr: "audit.head_log_interval: 100ms is shorter than 1s"},
		{name: "audit head interval too long", old: "registry_poll: 2s", new: "registry_poll: 2s\naudit: {head_log_interval: 2h}", wantErr: "audit.head_log_interval: 2h0m0s is longer than 1h"},
		{name: "audit retention negative", old: "registry_poll: 2s", new: "registry_poll: 2s\naudit: {retention: -24h}", wantErr: "audit.retention: must not be negative"},
		{name: "audit retention under a day", old: "registry_poll: 2s", new: "registry_poll: 2s\naudit: {retention: 1h}", wantErr: "audit.retention: 1h0m0s is shorter than 24h"},
		{name: "instance on two lines", old: "registry_poll: 2s", new: "registry_poll: 2s\ninstance: \"a\\nb\"", wantErr: "instance: must be one line"},
		{name: "duration not a duration", old: "registry_poll: 2s", new: "registry_poll: soon", wantErr: `registry_poll: want a duration such as "90s" or "1h", got "soon"`},
		{name: "duration without unit", old: "registry_poll: 2s", new: "registry_poll: 2", wantErr: `registry_poll: want a duration such as "90s" or "1h", got "2"`},
		{name: "bool not a bool", old: "max_lifetime: 60s", new: "max_lifetime: 60s\n  allow_rs_algorithms: maybe", wantErr: `client_assertion.allow_rs_algorithms: want true or false, got "maybe"`},
		{name: "list where a value belongs", old: "listen: 127.0.0.1:8080", new: "listen: [a, b]", wantErr: "listen: want a single value, got a list"},
		{name: "unknown key", old: "registry_poll: 2s", new: "registry_pol: 2s", wantErr: `:22: unknown key "registry_pol" (did you mean "registry_poll"?)`},
		{name: "key given twice", old: "registry_poll: 2s", new: "registry_poll: 2s\nregistry_poll: 3s", wantErr: `key "registry_poll" is given twice (first at line 22)`},
		{name: "yaml syntax", old: "registry_poll: 2s", new: "registry_poll: [2s", wantErr: "YAML: "},

		// Organisations.
		{name: "org number invalid", old: `number: "310303038"`, new: `number: "310303039"`, wantErr: `organisations[1].number: "310303039" is not a valid organisation number`},
		{name: "org number missing", old: "  - number: \"310202029\"\n    name: Supplier\n", new: "  - name: Nobody\n  - number: \"310202029\"\n", wantErr: "organisations[0].number: is required"},
		{name: "org declared twice", old: "    name: Customer child\n    parent: \"310303038\"\n", new: "    name: Customer child\n    parent: \"310303038\"\n  - number: \"310202029\"\n", wantErr: `organisations[3].number: organisation "310202029" is already declared at organisations[0] (line 35)`},
		{name: "org parent invalid", old: `parent: "310303038"`, new: `parent: "123456789"`, wantErr: `organisations[2].parent: "123456789" is not a valid organisation number`},
		{name: "org parent itself", old: `parent: "310303038"`, new: `parent: "310404047"`, wantErr: "organisations[2].parent: is the organisation itself"},
		{name: "org parents loop", old: "name: Customer\n", new: "name: Customer\n    parent: \"310404047\"\n", wantErr: `parents of "310303038" loop back to it`},

		// APIs.
		{name: "api audience missing", old: "  - audience: nhn:deft\n    scopes: [nhn:deft/api]\n", new: "  - scopes: [nhn:deft/api]\n  - audience: nhn:deft\n    scopes: [nhn:deft/api2]\n", wantErr: "apis[0].audience: is required"},
		{name: "api audience with slash", old: "apis:\n", new: "apis:\n  - audience: nhn/x\n    scopes: [nhn/x/a]\n", wantErr: `apis[0].audience: "nhn/x" must be one word without /`},
		{name: "api declared twice", old: "apis:\n", new: "apis:\n  - audience: nhn:deft\n    scopes: [nhn:deft/other]\n", wantErr: `api "nhn:deft" is already declared at apis[0] (line 24)`},
		{name: "api without scopes", old: "apis:\n", new: "apis:\n  - audience: nhn:x\n    scopes: []\n", wantErr: "apis[0].scopes: needs at least one scope"},
		{name: "scope without audience prefix", old: "scopes: [nhn:deft/api]\n    status", new: "scopes: [nhn:deft/api, deft/api]\n    status", wantErr: `apis[0].scopes[1]: scope "deft/api" must start with "nhn:deft/"`},
		{name: "scope only the prefix", old: "scopes: [nhn:deft/api]\n    status", new: "scopes: [nhn:deft/api, nhn:deft/]\n    status", wantErr: `scope "nhn:deft/" must start with "nhn:deft/"`},
		{name: "scope bad character", old: "scopes: [nhn:deft/api]\n    status", new: "scopes: [nhn:deft/api, 'nhn:deft/a b']\n    status", wantErr: `scope "nhn:deft/a b" has characters a scope cannot have`},
		{name: "scope twice", old: "scopes: [nhn:deft/api]\n    status", new: "scopes: [nhn:deft/api, nhn:deft/api]\n    status", wantErr: `apis[0].scopes[1]: scope "nhn:deft/api" is listed twice`},
		{name: "client claim name", old: "client_claims: [sfm-id, orgnr_supplier]", new: "client_claims: [sfm-id, orgnr_supplier, 'a/b']", wantErr: `apis[1].client_claims[2]: "a/b" is not orgnr_supplier`},
		{name: "client claim twice", old: "client_claims: [sfm-id, orgnr_supplier]", new: "client_claims: [sfm-id, orgnr_supplier, sfm-id]", wantErr: `claim "sfm-id" is listed twice`},
		{name: "api status", old: "status: active\n  - audience", new: "status: gone\n  - audience", wantErr: `apis[0].status: "gone" is not active, pending or disabled`},
		{name: "api lifetime negative", old: "client_claims: [sfm-id, orgnr_supplier]", new: "client_claims: [sfm-id, orgnr_supplier]\n    access_token_lifetime: -1m", wantErr: "apis[1].access_token_lifetime: must not be negative"},

		// Client systems.
		{name: "system id missing", old: "  - id: deft-only\n", new: "  - name: no id\n", wantErr: "client_systems[1].id: is required"},
		{name: "system id with space", old: "id: deft-only", new: "id: deft only", wantErr: `"deft only" has white space`},
		{name: "system declared twice", old: "id: deft-only", new: "id: sys", wantErr: `client system "sys" is already declared at client_systems[0] (line 43)`},
		{name: "system supplier missing", old: "    supplier: \"310202029\"\n    apis: [nhn:deft]\n", new: "    apis: [nhn:deft]\n", wantErr: "client_systems[1].supplier: is required"},
		{name: "system supplier invalid", old: "    supplier: \"310202029\"\n    apis: [nhn:deft]\n", new: "    supplier: \"31020202\"\n    apis: [nhn:deft]\n", wantErr: `client_systems[1].supplier: "31020202" is not a valid organisation number`},
		{name: "system api not declared", old: "apis: [nhn:deft]", new: "apis: [nhn:deft, nhn:msh]", wantErr: `client_systems[1].apis[1]: api "nhn:msh" is not declared`},
		{name: "system api twice", old: "apis: [nhn:deft]", new: "apis: [nhn:deft, nhn:deft]", wantErr: `api "nhn:deft" is listed twice`},
		{name: "system status", old: "status: active\n  - id: deft-only", new: "status: on\n  - id: deft-only", wantErr: `client_systems[0].status: "on" is not active`},

		// Clients.
		{name: "client id missing", old: "  - id: multi\n", new: "  - name: no id\n", wantErr: "clients[1].id: is required"},
		{name: "client id with control character", old: "id: multi", new: "id: \"mul\\tti\"", wantErr: `clients[1].id: "mul\tti" has white space`},
		{name: "client declared twice", old: "id: multi", new: "id: single", wantErr: `client "single" is already declared at clients[0] (line 51)`},
		{name: "client system missing", old: "    system: sys\n    tenancy: multi-tenant", new: "    tenancy: multi-tenant", wantErr: "clients[1].system: is required"},
		{name: "client system not declared", old: "    system: sys\n    tenancy: multi-tenant", new: "    system: other\n    tenancy: multi-tenant", wantErr: `clients[1].system: client system "other" is not declared`},
		{name: "tenancy", old: "tenancy: multi-tenant", new: "tenancy: shared", wantErr: `clients[1].tenancy: "shared" is not single-tenant or multi-tenant`},
		{name: "single-tenant without organisation", old: "    organisation: \"310303038\"\n    child_organisations: [\"310404047\"]\n", new: "", wantErr: "clients[0].organisation: a single-tenant client needs its organisation number"},
		{name: "default tenancy is single-tenant", old: "    tenancy: single-tenant\n    organisation: \"310303038\"\n    child_organisations: [\"310404047\"]\n", new: "", wantErr: "clients[0].organisation: a single-tenant client needs"},
		{name: "organisation invalid", old: "organisation: \"310303038\"", new: "organisation: \"310303030\"", wantErr: `clients[0].organisation: "310303030" is not a valid organisation number`},
		{name: "child invalid", old: `child_organisations: ["310404047"]`, new: `child_organisations: ["310404047", "abc"]`, wantErr: `clients[0].child_organisations[1]: "abc" is not a valid`},
		{name: "child is own organisation", old: `child_organisations: ["310404047"]`, new: `child_organisations: ["310303038"]`, wantErr: `"310303038" is the client's own organisation`},
		{name: "child twice", old: `child_organisations: ["310404047"]`, new: `child_organisations: ["310404047", "310404047"]`, wantErr: `"310404047" is listed twice`},
		{name: "child belongs elsewhere", old: `parent: "310303038"`, new: `parent: "310202029"`, wantErr: `"310404047" belongs to "310202029", not to the client's organisation "310303038"`},
		{name: "multi-tenant with organisation", old: "tenancy: multi-tenant", new: "tenancy: multi-tenant\n    organisation: \"310303038\"", wantErr: "clients[1].organisation: a multi-tenant client has no fixed organisation"},
		{name: "multi-tenant with children", old: "tenancy: multi-tenant", new: "tenancy: multi-tenant\n    child_organisations: [\"310404047\"]", wantErr: "a multi-tenant client has no list of child organisations"},
		{name: "grant type unknown", old: "grant_types: [client_credentials]", new: "grant_types: [client_credentials, password]", wantErr: `clients[0].grant_types[1]: "password" is not one of`},
		{name: "grant type twice", old: "grant_types: [client_credentials]", new: "grant_types: [client_credentials, client_credentials]", wantErr: `"client_credentials" is listed twice`},
		{name: "client without scopes", old: "scopes: [e-helse:sfm.api/sfm.api]\n    jwks_file", new: "scopes: []\n    jwks_file", wantErr: "clients[1].scopes: needs at least one scope"},
		{name: "client scope undeclared", old: "scopes: [e-helse:sfm.api/sfm.api]\n    jwks_file", new: "scopes: [e-helse:sfm.api/sfm.api, nhn:msh/api]\n    jwks_file", wantErr: `clients[1].scopes[1]: scope "nhn:msh/api" is not declared by any api`},
		{name: "client scope outside its system", old: "    system: sys\n    tenancy: multi-tenant", new: "    system: deft-only\n    tenancy: multi-tenant", wantErr: `scope "e-helse:sfm.api/sfm.api" belongs to api "e-helse:sfm.api", which client system "deft-only" does not list`},
		{name: "client scope twice", old: "scopes: [nhn:deft/api]\n    status: active\n    jwks", new: "scopes: [nhn:deft/api, nhn:deft/api]\n    status: active\n    jwks", wantErr: `clients[0].scopes[1]: scope "nhn:deft/api" is listed twice`},
		{name: "claim for undeclared api", old: "      e-helse:sfm.api:\n", new: "      nhn:msh:\n", wantErr: `clients[1].claims["nhn:msh"]: api "nhn:msh" is not declared`},
		{name: "claim the api does not list", old: "sfm-id: 0c4c", new: "vkp-id: 0c4c", wantErr: `clients[1].claims["e-helse:sfm.api"]["vkp-id"]: api "e-helse:sfm.api" does not list "vkp-id" in client_claims`},
		{name: "claim filled in by the service", old: "sfm-id: 0c4c1b49-6a8e-4c2f-9d3b-5e7f1a2b3c4d", new: "orgnr_supplier: \"310202029\"", wantErr: `"orgnr_supplier" is filled in by the token service`},
		{name: "claim without value", old: "sfm-id: 0c4c1b49-6a8e-4c2f-9d3b-5e7f1a2b3c4d", new: "sfm-id: ''", wantErr: `["sfm-id"]: has no value`},
		{name: "client status", old: "status: active\n    jwks", new: "status: enabled\n    jwks", wantErr: `clients[0].status: "enabled" is not active`},
		{name: "client lifetime negative", old: "tenancy: multi-tenant", new: "tenancy: multi-tenant\n    access_token_lifetime: -5m", wantErr: "clients[1].access_token_lifetime: must not be negative"},

		// Client keys.
		{name: "no keys", old: "    jwks_file: keys.json\n", new: "", wantErr: "clients[1]: needs public keys: set jwks or jwks_file"},
		{name: "key file missing", old: "jwks_file: keys.json", new: "jwks_file: nothere.json", wantErr: "clients[1].jwks_file: open "},
		{name: "jwks not JSON", old: `{"keys": [<EC-KEY>]}`, new: `"not json"`, wantErr: "clients[0].jwks: not a JSON object"},
		{name: "jwks a list", old: `{"keys": [<EC-KEY>]}`, new: `[<EC-KEY>]`, wantErr: "jwks: want a JWKS mapping or JSON text, got a list"},
		{name: "jwks empty", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": []}`, wantErr: "clients[0].jwks: has no keys"},
		{name: "jwks keys and kty", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [<EC-KEY>], "kty": "EC"}`, wantErr: `has both "keys" and "kty"`},
		{name: "private key", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [` + keys.ecPrivate + `]}`, wantErr: `key 0 (kid "ec-private"): holds private key material ("d")`},
		{name: "symmetric key", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hs"}]}`, wantErr: `key 0 (kid "hs"): is a symmetric key`},
		{name: "RSA key too short", fileKeys: `{"keys": [` + keys.rsa1024 + `]}`, wantErr: `clients[1].jwks_file: key 0 (kid "rsa-small"): RSA key of 1024 bits is shorter than 2048`},
		{name: "EC curve not allowed", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [{"kty": "EC", "crv": "P-224", "x": "AA", "y": "AA", "kid": "p224"}]}`, wantErr: `key 0 (kid "p224"): `},
		{name: "OKP key not allowed", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"}]}`, wantErr: `key 0 (kid "ed"): key type "OKP" is not RSA or EC`},
		{name: "key for encryption", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [` + strings.Replace(keys.ec, `"use":"sig"`, `"use":"enc"`, 1) + `]}`, wantErr: `use is "enc", want "sig"`},
		{name: "alg that does not fit the key", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [` + strings.Replace(keys.ec, `"ES256"`, `"PS256"`, 1) + `]}`, wantErr: "alg PS256 does not fit an EC key"},
		{name: "alg not allowed", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [` + strings.Replace(keys.ec, `"ES256"`, `"HS256"`, 1) + `]}`, wantErr: `alg "HS256" is not one of`},
		{name: "kid twice", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [<EC-KEY>, ` + strings.Replace(keys.ec2, `"ec-2"`, `"ec-1"`, 1) + `]}`, wantErr: `key 1 (kid "ec-1"): kid is also used by key 0`},
		{name: "same key twice", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [<EC-KEY>, ` + strings.Replace(keys.ec, `"ec-1"`, `"ec-copy"`, 1) + `]}`, wantErr: `key 1 (kid "ec-copy"): is the same key as key 0`},
		// Token exchange.
		{name: "owner not declared", old: "owners: [single]", new: "owners: [single, nobody]", wantErr: `apis[1].owners[1]: client "nobody" is not declared`},
		{name: "owner twice", old: "owners: [single]", new: "owners: [single, single]", wantErr: `apis[1].owners[1]: client "single" is listed twice`},
		{name: "exchange by default without owners", old: "    owners: [single]\n", new: "    exchange_by_default: true\n", wantErr: "apis[1].exchange_by_default: lets the owners exchange any client's tokens, but the api has no owners"},
		{name: "subject claim of no form", old: "subject_claims: [e-helse:sfm.api/client/claims/sfm-id", new: "subject_claims: [sfm-id", wantErr: `apis[2].subject_claims[0]: "sfm-id" is not nhn:sfm:journal-id or an API-specific claim`},
		{name: "subject claim of an undeclared api", old: "subject_claims: [e-helse:sfm.api/client/claims/sfm-id", new: "subject_claims: [nhn:vkp/client/claims/vkp-id", wantErr: `apis[2].subject_claims[0]: api "nhn:vkp" is not declared`},
		{name: "subject claim no token carries", old: "subject_claims: [e-helse:sfm.api/client/claims/sfm-id", new: "subject_claims: [e-helse:sfm.api/client/claims/vkp-id", wantErr: `api "e-helse:sfm.api" does not list "vkp-id" in client_claims, so no subject token carries it`},
		{name: "subject claim twice", old: "nhn:sfm:journal-id]", new: "nhn:sfm:journal-id, nhn:sfm:journal-id]", wantErr: `apis[2].subject_claims[2]: claim "nhn:sfm:journal-id" is listed twice`},
		{name: "exchange actor not declared", old: "exchange_actors: [single]", new: "exchange_actors: [sfm-actor]", wantErr: `clients[1].exchange_actors[0]: client "sfm-actor" is not declared`},
		{name: "exchange actor twice", old: "exchange_actors: [single]", new: "exchange_actors: [single, single]", wantErr: `clients[1].exchange_actors[1]: client "single" is listed twice`},

		// Refresh tokens.
		{name: "refresh token lifetime zero", old: "access_token_lifetime: 1h", new: "access_token_lifetime: 1h\n  refresh_token_lifetime: 0s", wantErr: "tokens.refresh_token_lifetime: must be positive"},
		{name: "client refresh token lifetime negative", old: "refresh_token_lifetime: 8h", new: "refresh_token_lifetime: -8h", wantErr: "clients[1].refresh_token_lifetime: must not be negative"},
		{name: "client refresh token lifetime without the grant", old: "grant_types: [client_credentials, refresh_token]", new: "grant_types: [client_credentials]", wantErr: "clients[1].refresh_token_lifetime: is set, but only clients with the refresh_token grant get refresh tokens"},

		// Delegations.
		{name: "delegation organisation missing", old: "  - organisation: \"310303038\"\n    supplier", new: "  - supplier", wantErr: "delegations[0].organisation: is required"},
		{name: "delegation organisation invalid", old: "  - organisation: \"310303038\"\n    supplier", new: "  - organisation: \"310303039\"\n    supplier", wantErr: `delegations[0].organisation: "310303039" is not a valid organisation number`},
		{name: "delegation supplier missing", old: "    supplier: \"310202029\"\n    apis: [e-helse:sfm.api]", new: "    apis: [e-helse:sfm.api]", wantErr: "delegations[0].supplier: is required"},
		{name: "delegation supplier invalid", old: "    supplier: \"310202029\"\n    apis: [e-helse:sfm.api]", new: "    supplier: \"12\"\n    apis: [e-helse:sfm.api]", wantErr: `delegations[0].supplier: "12" is not a valid organisation number`},
		{name: "delegation api not declared", old: "    apis: [e-helse:sfm.api]\n", new: "    apis: [e-helse:sfm.api, nhn:msh]\n", wantErr: `delegations[0].apis[1]: api "nhn:msh" is not declared`},
		{name: "delegation api twice", old: "    apis: [e-helse:sfm.api]\n", new: "    apis: [e-helse:sfm.api, e-helse:sfm.api]\n", wantErr: `delegations[0].apis[1]: api "e-helse:sfm.api" is listed twice`},
		{name: "delegation declared twice", old: "    apis: [e-helse:sfm.api]\n", new: "    apis: [e-helse:sfm.api]\n  - {organisation: \"310303038\", supplier: \"310202029\"}\n", wantErr: `delegations[1]: the delegation from "310303038" to "310202029" is already declared at delegations[0] (line 72)`},
		{name: "delegation status", old: "    apis: [e-helse:sfm.api]\n", new: "    apis: [e-helse:sfm.api]\n    status: pending\n", wantErr: `delegations[0].status: "pending" is not active or disabled`},

		// Identity providers.
		{name: "identity provider name missing", old: "  - name: testidp-oidc\n    type", new: "  - type", wantErr: "identity_providers[0].name: is required"},
		{name: "identity provider name with a space", old: "name: testidp-oidc", new: "name: test idp", wantErr: `identity_providers[0].name: "test idp" is not a name of letters, digits`},
		{name: "identity provider name with a slash", old: "name: testidp-oidc", new: "name: test/idp", wantErr: `identity_providers[0].name: "test/idp" is not a name`},
		{name: "identity provider name starts with a dot", old: "name: testidp-oidc", new: "name: .idp", wantErr: `identity_providers[0].name: ".idp" is not a name`},
		{name: "identity provider name too long", old: "name: testidp-oidc", new: "name: " + strings.Repeat("a", 65), wantErr: "identity_providers[0].name: \"aaaa"},
		{name: "identity provider declared twice", old: "name: idporten", new: "name: testidp-oidc", wantErr: `identity_providers[1].name: identity provider "testidp-oidc" is already declared at identity_providers[0] (line 76)`},
		{name: "identity provider type missing", old: "    type: testidp\n", new: "", wantErr: "identity_providers[0].type: is required: testidp or oidc"},
		{name: "identity provider type unknown", old: "type: oidc", new: "type: saml", wantErr: `identity_providers[1].type: "saml" is not testidp or oidc`},
		{name: "identity provider display name of two lines", old: "display_name: Test login", new: "display_name: \"Test\\nlogin\"", wantErr: "identity_providers[0].display_name: must be at most 200 characters without line breaks, tabs"},
		{name: "identity provider display name with a tab", old: "display_name: Test login", new: "display_name: \"Test\\tlogin\"", wantErr: "identity_providers[0].display_name: must be at most 200 characters"},
		{name: "identity provider display name too long", old: "display_name: Test login", new: "display_name: " + strings.Repeat("x", 201), wantErr: "identity_providers[0].display_name: must be at most 200 characters"},
		{name: "identity provider enabled not a bool", old: "enabled: false", new: "enabled: maybe", wantErr: "identity_providers[1].enabled"},

		// Persons and HPR.
		{name: "person pid check digit", old: `pid: "17056600574"`, new: `pid: "17056600575"`, wantErr: `persons[1].pid: "17056600575" is not a national identity number: its check digits are wrong`},
		{name: "person pid ten digits", old: `pid: "17056600574"`, new: `pid: "1705660057"`, wantErr: `persons[1].pid: "1705660057" is not a national identity number: 11 digits`},
		{name: "person pid not a date", old: `pid: "17056600574"`, new: `pid: "17136600574"`, wantErr: `persons[1].pid: "17136600574" is not a national identity number: it must start with a date of birth`},
		{name: "person pid missing", old: `  - pid: "17056600574"` + "\n    given_name", new: "  - given_name", wantErr: "persons[1].pid: is required"},
		{name: "person declared twice", old: `pid: "17056600574"`, new: `pid: "06828399789"`, wantErr: `persons[1].pid: person "06828399789" is already declared at persons[0] (line 83)`},
		{name: "person given name missing", old: "    given_name: Ola\n", new: "", wantErr: "persons[1].given_name: is required"},
		{name: "person family name with a tab", old: "family_name: Grevling", new: `family_name: "Grev\tling"`, wantErr: "persons[0].family_name: must be at most 100 characters"},
		{name: "person middle name too long", old: "middle_name: Åge", new: "middle_name: " + strings.Repeat("Å", 101), wantErr: "persons[1].middle_name: must be at most 100 characters"},
		{name: "person unknown key", old: "given_name: Kvart", new: "given_name: Kvart\n    name: Kvart", wantErr: `persons[0]: unknown key "name"`},
		{name: "hpr number not digits", old: `number: "565505933"`, new: `number: "56550593X"`, wantErr: `hpr[0].number: "56550593X" is not an HPR number`},
		{name: "hpr number ten digits", old: `number: "565505933"`, new: `number: "5655059331"`, wantErr: `hpr[0].number: "5655059331" is not an HPR number`},
		{name: "hpr number missing", old: `  - number: "565505933"` + "\n    pid", new: "  - pid", wantErr: "hpr[0].number: is required"},
		{name: "hpr pid invalid", old: `    pid: "06828399789"` + "\n    approvals", new: `    pid: "06828399788"` + "\n    approvals", wantErr: `hpr[0].pid: "06828399788" is not a national identity number: its check digits are wrong`},
		{name: "hpr approvals missing", old: "    approvals:\n      - profession: LE\n        requisition_rights: [{value: \"1\", description: Full rekvisisjonsrett}]\n        specialities: [{value: \"1\", description: Allmennmedisin}]\n", new: "", wantErr: "hpr[0].approvals: at least one approval is required"},
		{name: "hpr profession not a code", old: "profession: LE", new: "profession: Lege", wantErr: `hpr[0].approvals[0].profession: "Lege" is not a profession code`},
		{name: "hpr speciality without value", old: `specialities: [{value: "1", description: Allmennmedisin}]`, new: `specialities: [{description: Allmennmedisin}]`, wantErr: "hpr[0].approvals[0].specialities[0].value: is required"},
		{name: "hpr requisition right description of two lines", old: "description: Full rekvisisjonsrett", new: `description: "Full\nrett"`, wantErr: "hpr[0].approvals[0].requisition_rights[0].description: must be at most 200 characters"},

		{name: "file key also inline", old: `{"keys": [<EC-KEY>]}`, new: `{"keys": [<EC-KEY>]}` + "\n    jwks_file: keys.json", fileKeys: `{"keys": [` + keys.ec + `]}`, wantErr: `clients[0].jwks_file: key "ec-1" is also in jwks`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := base
			if tt.old != "" {
				if !strings.Contains(doc, tt.old) {
					t.Fatalf("base has no %q", tt.old)
				}
				doc = strings.Replace(doc, tt.old, tt.new, 1)
			}
			_, err := Load(writeConfig(t, doc, tt.fileKeys))
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error:\n%v\nwant it to contain %q", err, tt.wantErr)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if len(errs) != 1 {
				t.Errorf("got %d problems, want 1:\n%v", len(errs), err)
			}
		})
	}
}

func TestUnknownKeysNameKeyAndLine(t *testing.T) {
	clearEnv(t)
	doc := "issuer: https://sts.example.org\n" + // 1
		"listn: 127.0.0.1:8080\n" + // 2
		"http:\n" + // 3
		"  max_body: 10\n" + // 4
		"apis:\n" + // 5
		"  - audience: nhn:deft\n" + // 6
		"    scopes: [nhn:deft/api]\n" + // 7
		"    scope: [nhn:deft/x]\n" + // 8
		"rate_limit:\n" + // 9
		"  per_adress: 1\n" + // 10
		"identity_providers:\n" + // 11
		"  - name: testidp-oidc\n" + // 12
		"    type: oidc\n" + // 13
		"    displayname: Test\n" // 14
	_, err := Parse("tillit.yaml", []byte(doc))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := []string{
		`tillit.yaml:2: unknown key "listn" (did you mean "listen"?)`,
		`tillit.yaml:4: http: unknown key "max_body"`,
		`tillit.yaml:8: apis[0]: unknown key "scope" (did you mean "scopes"?)`,
		`tillit.yaml:10: rate_limit: unknown key "per_adress" (did you mean "per_address"?)`,
		`tillit.yaml:14: identity_providers[0]: unknown key "displayname" (did you mean "display_name"?)`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestEveryProblemReported checks that problems of every sort, from
// decoding, from the server settings and from the registry, come back
// together, one per line, in line order.
func TestEveryProblemReported(t *testing.T) {
	clearEnv(t)
	doc := "issuer: http://sts.example.org/\n" + // 1
		"bogus: 1\n" + // 2
		"registry_poll: fast\n" + // 3
		"keys:\n" + // 4
		"  algorithm: none\n" + // 5
		"organisations:\n" + // 6
		"  - number: \"123456789\"\n" + // 7
		"clients:\n" + // 8
		"  - id: c\n" + // 9
		"    system: nowhere\n" + // 10
		"    tenancy: multi-tenant\n" + // 11
		"    scopes: [x/y]\n" + // 12
		"    jwks: {\"keys\": []}\n" // 13
	_, err := Parse("t.yaml", []byte(doc))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is %T, want Errors", err, err)
	}
	want := []string{
		`t.yaml:1: issuer: "http://sts.example.org/" must use https`,
		`t.yaml:2: unknown key "bogus"`,
		`t.yaml:3: registry_poll: want a duration`,
		`t.yaml:5: keys.algorithm: "none" is not one of`,
		`t.yaml:7: organisations[0].number: "123456789" is not a valid organisation number`,
		`t.yaml:10: clients[0].system: client system "nowhere" is not declared`,
		`t.yaml:12: clients[0].scopes[0]: scope "x/y" is not declared by any api`,
		`t.yaml:13: clients[0].jwks: has no keys`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || len(errs) != len(want) {
		t.Fatalf("got %d problems:\n%v\nwant %d", len(errs), err, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d = %q, want it to start with %q", i, lines[i], want[i])
		}
	}
}

func TestSecondDocument(t *testing.T) {
	clearEnv(t)
	_, err := Parse("t.yaml", []byte("dev: true\n---\ndev: false\n"))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:2: a second YAML document") {
		t.Fatalf("error = %v, want a second YAML document at line 2", err)
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Parse("", []byte("issuer: https://sts.example.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Issuer = "https://sts.example.org"
	want.Storage = filepath.Join("data", "tillit.db")
	want.Instance = defaultInstance()
	want.Environment = EnvironmentProduction
	want.src = c.src
	if !equalConfig(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if a := c.Audit; a.HeadLogEveryRecords != 1000 || a.HeadLogInterval != 10*time.Second || a.Retention != 0 {
		t.Errorf("audit %+v, want heads logged every 1000 records or 10s", a)
	}
	if got := c.ClientAssertion.Algorithms(); len(got) != 9 {
		t.Errorf("Algorithms() = %v, want PS*, ES* and RS*", got)
	}
	c.ClientAssertion.AllowRSAlgorithms = false
	for _, alg := range c.ClientAssertion.Algorithms() {
		if strings.HasPrefix(string(alg), "RS") {
			t.Errorf("Algorithms() has %s with allow_rs_algorithms false", alg)
		}
	}
	if backend, target, err := c.StorageBackend(); err != nil || backend != BackendSQLite || target != filepath.Join("data", "tillit.db") {
		t.Errorf("StorageBackend() = %q, %q, %v", backend, target, err)
	}
	if c.Log.SlogLevel().String() != "INFO" {
		t.Errorf("SlogLevel() = %v", c.Log.SlogLevel())
	}
}

// equalConfig compares the exported settings, which are all plain values.
func equalConfig(a, b *Config) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestFalseAndZeroOverrideDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Parse("", []byte("issuer: https://sts.example.org\nclient_assertion:\n  allow_rs_algorithms: false\n  clock_skew: 0s\ndpop:\n  require_nonce: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientAssertion.AllowRSAlgorithms || c.DPoP.RequireNonce || c.ClientAssertion.ClockSkew != 0 {
		t.Errorf("explicit false and 0s were replaced by defaults: %+v %+v", c.ClientAssertion, c.DPoP)
	}
}

func TestDevMode(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, doc, wantIssuer string
	}{
		{name: "default listen", doc: "dev: true\n", wantIssuer: "http://127.0.0.1:8080"},
		{name: "wildcard host", doc: "dev: true\nlisten: 0.0.0.0:9000\n", wantIssuer: "http://localhost:9000"},
		{name: "empty host", doc: "dev: true\nlisten: :9000\n", wantIssuer: "http://localhost:9000"},
		{name: "issuer given", doc: "dev: true\nissuer: http://localhost:1234\n", wantIssuer: "http://localhost:1234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("", []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != tt.wantIssuer {
				t.Errorf("Issuer = %q, want %q", c.Issuer, tt.wantIssuer)
			}
			if _, err := c.KeyEncryptionKey(); !errors.Is(err, ErrNoKeyEncryptionKey) {
				t.Errorf("KeyEncryptionKey() error = %v, want ErrNoKeyEncryptionKey", err)
			}
		})
	}
}

func TestIssuerOnLoopback(t *testing.T) {
	clearEnv(t)
	for _, issuer := range []string{"http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080", "https://sts.example.org/tenant"} {
		if _, err := Parse("", []byte("issuer: "+issuer+"\n")); err != nil {
			t.Errorf("issuer %s: %v", issuer, err)
		}
	}
}

func TestStorage(t *testing.T) {
	clearEnv(t)
	abs := filepath.Join(t.TempDir(), "x.db")
	tests := []struct {
		name, storage       string
		wantBackend, wantTo string
	}{
		{name: "relative path", storage: "db/x.db", wantBackend: BackendSQLite, wantTo: filepath.Join("/etc/tillit", "db/x.db")},
		{name: "absolute path", storage: abs, wantBackend: BackendSQLite, wantTo: abs},
		{name: "sqlite relative", storage: "sqlite:x.db", wantBackend: BackendSQLite, wantTo: "/etc/tillit/x.db"},
		{name: "sqlite absolute", storage: "sqlite:" + abs, wantBackend: BackendSQLite, wantTo: abs},
		{name: "sqlite URL", storage: "sqlite://" + abs, wantBackend: BackendSQLite, wantTo: abs},
		{name: "postgres", storage: "postgres://tillit:pw@db:5432/tillit?sslmode=verify-full", wantBackend: BackendPostgres, wantTo: "postgres://tillit:pw@db:5432/tillit?sslmode=verify-full"},
		{name: "postgresql", storage: "postgresql://db/tillit", wantBackend: BackendPostgres, wantTo: "postgresql://db/tillit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("/etc/tillit/tillit.yaml", []byte("issuer: https://sts.example.org\nstorage: "+tt.storage+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			backend, target, err := c.StorageBackend()
			if err != nil || backend != tt.wantBackend || target != tt.wantTo {
				t.Errorf("StorageBackend() = %q, %q, %v; want %q, %q", backend, target, err, tt.wantBackend, tt.wantTo)
			}
		})
	}
}

func TestStorageErrorHidesPassword(t *testing.T) {
	clearEnv(t)
	_, err := Parse("", []byte("issuer: https://sts.example.org\nstorage: postgres://u:hunter2@[::1/db\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error = %v, want one without the password", err)
	}
}

func TestEnvironment(t *testing.T) {
	fileKey := make([]byte, 32)
	envKey := make([]byte, 32)
	for i := range envKey {
		fileKey[i] = 1
		envKey[i] = 2
	}
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("kek.b64", base64.StdEncoding.EncodeToString(fileKey)+"\n")
	write("short.b64", base64.StdEncoding.EncodeToString(fileKey[:16]))
	write("junk.b64", "not base64 at all!")
	cfg := filepath.Join(dir, "tillit.yaml")

	tests := []struct {
		name       string
		doc        string
		env        map[string]string
		wantKey    []byte
		wantStore  string
		wantErr    string
		wantErrNot string
	}{
		{name: "key from file", doc: "keys:\n  encryption_key_file: kek.b64\n", wantKey: fileKey},
		{name: "key from env", env: map[string]string{EnvKeyEncryptionKey: base64.StdEncoding.EncodeToString(envKey)}, wantKey: envKey},
		{name: "env wins over file", doc: "keys:\n  encryption_key_file: kek.b64\n", env: map[string]string{EnvKeyEncryptionKey: base64.RawURLEncoding.EncodeToString(envKey)}, wantKey: envKey},
		{name: "env wins even when the file is missing", doc: "keys:\n  encryption_key_file: missing.b64\n", env: map[string]string{EnvKeyEncryptionKey: base64.StdEncoding.EncodeToString(envKey)}, wantKey: envKey},
		{name: "env key not base64", env: map[string]string{EnvKeyEncryptionKey: "%%%"}, wantErr: "config: TILLIT_KEY_ENCRYPTION_KEY: key-encryption key is not base64"},
		{name: "env key too short", env: map[string]string{EnvKeyEncryptionKey: base64.StdEncoding.EncodeToString(envKey[:31])}, wantErr: "TILLIT_KEY_ENCRYPTION_KEY: key-encryption key is 31 bytes, want 32"},
		{name: "file key too short", doc: "keys:\n  encryption_key_file: short.b64\n", wantErr: "tillit.yaml:3: keys.encryption_key_file: key-encryption key is 16 bytes, want 32"},
		{name: "file key not base64", doc: "keys:\n  encryption_key_file: junk.b64\n", wantErr: "keys.encryption_key_file: key-encryption key is not base64"},
		{name: "file key missing", doc: "keys:\n  encryption_key_file: missing.b64\n", wantErr: "keys.encryption_key_file: open "},
		{name: "storage from env", doc: "storage: sqlite:file.db\n", env: map[string]string{EnvStorage: "postgres://u:pw@db/tillit"}, wantStore: "postgres://u:pw@db/tillit"},
		{name: "bad storage from env", env: map[string]string{EnvStorage: "mysql://u:pw@db/tillit"}, wantErr: `config: TILLIT_STORAGE: scheme "mysql" is not supported`, wantErrNot: "pw@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Parse(cfg, []byte("issuer: https://sts.example.org\n"+tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if tt.wantErrNot != "" && strings.Contains(err.Error(), tt.wantErrNot) {
					t.Fatalf("error = %v, must not contain %q", err, tt.wantErrNot)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantKey != nil {
				got, err := c.KeyEncryptionKey()
				if err != nil || string(got) != string(tt.wantKey) {
					t.Errorf("KeyEncryptionKey() = %x, %v; want %x", []byte(got), err, tt.wantKey)
				}
			}
			if tt.wantStore != "" && c.Storage != tt.wantStore {
				t.Errorf("Storage = %q, want %q", c.Storage, tt.wantStore)
			}
		})
	}
}

func TestSecretIsRedacted(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvKeyEncryptionKey, base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	c, err := Parse("", []byte("issuer: https://sts.example.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmtSprint("%v", c.Keys), fmtSprint("%+v", c.Keys), fmtSprint("%#v", c.Keys), fmtSprint("%s", c.Keys.EncryptionKey), fmtSprint("%x", c.Keys.EncryptionKey),
	} {
		if strings.Contains(s, "0123") || strings.Contains(s, "3031") {
			t.Errorf("secret printed: %s", s)
		}
	}
	j, _ := json.Marshal(c)
	if strings.Contains(string(j), "MDEy") {
		t.Errorf("secret in JSON: %s", j)
	}
}

func TestRegistry(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeConfig(t, base, ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.APIs) != 3 || len(r.Organizations) != 3 || len(r.ClientSystems) != 2 || len(r.Clients) != 2 || len(r.Delegations) != 1 {
		t.Fatalf("Registry() = %+v", r)
	}
	if s := r.ClientSystems[1].Status; s != store.StatusActive {
		t.Errorf("default client system status = %q, want active", s)
	}
	multi := r.Clients[1]
	if multi.Tenancy != store.MultiTenant || multi.Status != store.StatusActive {
		t.Errorf("multi = %+v", multi)
	}
	if got := r.Clients[0].GrantTypes; len(got) != 1 || got[0] != "client_credentials" {
		t.Errorf("grant types = %v", got)
	}
	if multi.RefreshTokenLifetime != 8*time.Hour || len(multi.ExchangeActors) != 1 || multi.ExchangeActors[0] != "single" {
		t.Errorf("multi refresh lifetime %v, exchange actors %v", multi.RefreshTokenLifetime, multi.ExchangeActors)
	}
	if sfm := r.APIs[1]; len(sfm.Owners) != 1 || sfm.Owners[0] != "single" || sfm.ExchangeByDefault {
		t.Errorf("sfm api = %+v", sfm)
	}
	if rf := r.APIs[2]; len(rf.SubjectClaims) != 2 {
		t.Errorf("rf subject claims = %v", rf.SubjectClaims)
	}
	if d := r.Delegations[0]; d.Organization != "310303038" || d.Supplier != "310202029" || d.Status != store.StatusActive ||
		len(d.AcceptedAPIs) != 1 || d.AcceptedAPIs[0] != "e-helse:sfm.api" {
		t.Errorf("delegation = %+v", d)
	}
	wantIdPs := []store.IdentityProvider{
		{Name: "testidp-oidc", Type: store.IdentityProviderTestIdP, DisplayName: "Test login", Status: store.StatusActive},
		{Name: "idporten", Type: store.IdentityProviderOIDC, Status: store.StatusDisabled},
	}
	if !slices.Equal(r.IdentityProviders, wantIdPs) {
		t.Errorf("identity providers = %+v, want %+v", r.IdentityProviders, wantIdPs)
	}
	if got := multi.Claims["e-helse:sfm.api/client/claims/sfm-id"]; got != "0c4c1b49-6a8e-4c2f-9d3b-5e7f1a2b3c4d" || len(multi.Claims) != 1 {
		t.Errorf("claims = %v", multi.Claims)
	}
	for _, cl := range r.Clients {
		keys, err := registry.ParseJWKS(cl.JWKS)
		if err != nil || len(keys) != 1 || keys[0].KeyID == "" {
			t.Errorf("client %s JWKS %s: %v", cl.ID, cl.JWKS, err)
		}
	}
	if r.Clients[0].Claims != nil {
		t.Errorf("client without claims has %v", r.Clients[0].Claims)
	}
}

// TestKIDFromThumbprint checks that a key without kid is stored with its
// RFC 7638 thumbprint, which is what clients put in the assertion header.
func TestKIDFromThumbprint(t *testing.T) {
	clearEnv(t)
	doc := strings.Replace(base, `{"keys": [<EC-KEY>]}`, `{"keys": [`+keys.ecNoKID+`]}`, 1)
	c, err := Load(writeConfig(t, doc, ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Registry()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.Clients[0].JWKS, &set); err != nil {
		t.Fatal(err)
	}
	tp, err := set.Keys[0].Thumbprint(cryptoSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(tp); set.Keys[0].KeyID != want {
		t.Errorf("kid = %q, want thumbprint %q", set.Keys[0].KeyID, want)
	}
}

func TestJWKSForms(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, jwks string
	}{
		{name: "YAML mapping", jwks: "\n      keys:\n        - " + strings.NewReplacer(`{`, `{ `, `}`, ` }`).Replace(keys.ec)},
		{name: "JSON string", jwks: `'{"keys": [` + keys.ec + `]}'`},
		{name: "one JWK", jwks: keys.ec},
		{name: "numeric kid in YAML", jwks: "\n      kty: EC\n      crv: P-256\n      kid: 1\n      x: " + jsonField(keys.ec, "x") + "\n      y: " + jsonField(keys.ec, "y")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(base, `{"keys": [<EC-KEY>]}`, tt.jwks, 1)
			if _, err := Load(writeConfig(t, doc, "")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func jsonField(obj, field string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(obj), &m); err != nil {
		panic(err)
	}
	return m[field].(string)
}

func TestValidateOnBuiltConfig(t *testing.T) {
	c := Default()
	c.Issuer = "https://sts.example.org"
	c.Storage = "tillit.db"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	c.RegistryPoll = 0
	err := c.Validate()
	if err == nil || err.Error() != "config: registry_poll: must be positive, got 0s" {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load() = %v, want fs.ErrNotExist", err)
	}
}

// TestDecodeErrorsDoNotHideOthers checks the rule that keeps one mistake
// from being reported twice: a value that did not decode hides the checks
// of that value only, and an unknown key hides nothing.
func TestDecodeErrorsDoNotHideOthers(t *testing.T) {
	clearEnv(t)
	doc := strings.Replace(base, "    system: sys\n    tenancy: single-tenant\n", "    system: sys\n    tenancy: single-tenant\n    colour: blue\n", 1)
	doc = strings.Replace(doc, `organisation: "310303038"`, `organisation: "310303030"`, 1)
	doc = strings.Replace(doc, "scopes: [e-helse:sfm.api/sfm.api]\n    jwks_file", "scopes: {a: b}\n    jwks_file", 1)
	_, err := Load(writeConfig(t, doc, ""))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is %T", err, err)
	}
	want := []string{
		`clients[0]: unknown key "colour"`,
		`clients[0].organisation: "310303030" is not a valid organisation number`,
		`clients[1].scopes: want a list, got a mapping`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("problem %d = %q, want %q", i, errs[i], w)
		}
	}
}

func TestOverrides(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name       string
		doc        string
		o          Overrides
		wantIssuer string
		wantListen string
		wantErr    string
	}{
		{name: "dev from the command line relaxes issuer", doc: "listen: 127.0.0.1:9000\n", o: Overrides{Dev: true}, wantIssuer: "http://127.0.0.1:9000", wantListen: "127.0.0.1:9000"},
		{name: "dev issuer follows --listen", doc: "dev: true\nlisten: 127.0.0.1:9000\n", o: Overrides{Listen: "127.0.0.1:9100"}, wantIssuer: "http://127.0.0.1:9100", wantListen: "127.0.0.1:9100"},
		{name: "listen wins over the file", doc: "issuer: https://sts.example.org\nlisten: 127.0.0.1:9000\n", o: Overrides{Listen: ":443"}, wantIssuer: "https://sts.example.org", wantListen: ":443"},
		{name: "no dev in the file or on the command line", doc: "listen: 127.0.0.1:9000\n", wantErr: "issuer: is required"},
		{name: "bad --listen is named as such", doc: "issuer: https://sts.example.org\nlisten: 127.0.0.1:9000\n", o: Overrides{Listen: "nope"}, wantErr: `config: listen: "nope" is not host:port (given on the command line)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseWith("t.yaml", []byte(tt.doc), tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != tt.wantIssuer || c.Listen != tt.wantListen {
				t.Errorf("issuer %q listen %q, want %q %q", c.Issuer, c.Listen, tt.wantIssuer, tt.wantListen)
			}
		})
	}
}

// Proxies reads addresses as full-length prefixes and IPv4-mapped ones in
// their 4-byte form, which is how peers and X-Forwarded-For entries are
// compared.
func TestTrustedProxies(t *testing.T) {
	r := RateLimit{TrustedProxies: []string{"127.0.0.1", "10.0.0.0/8", "2001:db8::/32", "2001:db8::7", "::ffff:192.0.2.0/120"}}
	var got []string
	for _, p := range r.Proxies() {
		got = append(got, p.String())
	}
	want := "[127.0.0.1/32 10.0.0.0/8 2001:db8::/32 2001:db8::7/128 192.0.2.0/24]"
	if fmt.Sprint(got) != want {
		t.Fatalf("Proxies() = %v, want %s", got, want)
	}
}

func TestTLSAndMetricsSettings(t *testing.T) {
	clearEnv(t)
	certs := t.TempDir()
	certFile, keyFile, _ := tlstest.Write(t, certs, 1)
	other := t.TempDir()
	_, otherKey, _ := tlstest.Write(t, other, 2)
	tests := []struct {
		name     string
		settings string
		wantErr  string
	}{
		{name: "cert without key", settings: "tls: {cert_file: " + certFile + "}", wantErr: "tls.key_file: is required with tls.cert_file"},
		{name: "key without cert", settings: "tls: {key_file: " + keyFile + "}", wantErr: "tls.cert_file: is required with tls.key_file"},
		{name: "cert file missing", settings: "tls: {cert_file: nope.pem, key_file: " + keyFile + "}", wantErr: "tls: the certificate and key do not load: open "},
		{name: "key of another certificate", settings: "tls: {cert_file: " + certFile + ", key_file: " + otherKey + "}", wantErr: "tls: the certificate and key do not load: tls: private key does not match public key"},
		{name: "metrics listen not host:port", settings: "metrics: {listen: nine}", wantErr: `metrics.listen: "nine" is not host:port`},
		{name: "metrics on the main address", settings: "metrics: {listen: 127.0.0.1:8080}", wantErr: "metrics.listen: is the same address as listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, base+tt.settings+"\n", ""))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error:\n%v\nwant %q", err, tt.wantErr)
			}
			var errs Errors
			if errors.As(err, &errs) && len(errs) != 1 {
				t.Errorf("got %d problems, want 1:\n%v", len(errs), err)
			}
		})
	}

	// Relative paths are taken from the config file's folder.
	name := writeConfig(t, base+"tls: {cert_file: c/cert.pem, key_file: c/key.pem}\nmetrics: {listen: 127.0.0.1:9090}\n", "")
	dir := filepath.Dir(name)
	os.Mkdir(filepath.Join(dir, "c"), 0o700)
	tlstest.Write(t, filepath.Join(dir, "c"), 3)
	c, err := Load(name)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !c.TLS.Enabled() || c.TLS.CertFile != filepath.Join(dir, "c", "cert.pem") || c.TLS.KeyFile != filepath.Join(dir, "c", "key.pem") {
		t.Errorf("tls %+v", c.TLS)
	}
	if c.Metrics.Listen != "127.0.0.1:9090" {
		t.Errorf("metrics.listen %q", c.Metrics.Listen)
	}
}
