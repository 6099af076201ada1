// Package demo makes the development setup that `tillit serve --dev` starts
// with: a data folder holding a key-encryption key, three demo client keys and
// a configuration file that mirrors the two cases Tillit was built for, the
// DEFT API (DPoP required) and the SFM API (with its API-specific client
// claim sfm-id, and SFM's own client, which exchanges the EPJ's tokens for
// Reseptformidleren tokens). It is a test environment with a TestIDP and a
// synthetic population of persons, some of them doctors and nurses.
package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/keyfile"
)

// File names inside the data folder.
const (
	ConfigFile = "tillit.yaml"
	KEKFile    = "kek"
	DEFTKey    = "demo-deft.jwk"
	SFMKey     = "demo-sfm.jwk"
	// SFMAPIKey is the key of SFM's own client, which exchanges the EPJ's
	// tokens for Reseptformidleren tokens (examples/sfm).
	SFMAPIKey = "demo-sfm-api.jwk"
	// WebKey is the key of the demo web client, which logs people in.
	WebKey = "demo-web.jwk"
	// EPJKey is the key of the demo EPJ's login client (examples/epj).
	EPJKey = "demo-epj.jwk"
)

// Demo client IDs, organisations and the SFM id. The organisation numbers
// are synthetic but valid (mod 11), like the test organisations HelseID's
// test environment uses.
const (
	DEFTClientID  = "demo-deft"
	SFMClientID   = "demo-sfm"
	SupplierOrg   = "310900028"
	CustomerOrg   = "310900036"
	CustomerChild = "310900044"
	SFMID         = "0c4c1b49-8a8e-4c3b-9f6e-6f3f5d2b7a11"
	// SFMAPIClientID is SFM's own client; SFMOrg its organisation.
	SFMAPIClientID = "demo-sfm-api"
	SFMOrg         = "310900109"
	// WebClientID logs people in (authorization code with PAR) at a
	// loopback redirect URI on any port, as a native app or a CLI does.
	WebClientID = "demo-web"
	// EPJClientID is examples/epj's login client: a doctor logs in and
	// prescribes through SFM, which may exchange the person's token.
	EPJClientID = "demo-epj"
	// EPJURL is where examples/epj listens by default: its front page is
	// where logout returns.
	EPJURL = "http://127.0.0.1:8084"
	// Audiences and scopes of the token exchange examples.
	SFMAudience = "e-helse:sfm.api"
	SFMScope    = "e-helse:sfm.api/sfm.api"
	RFAudience  = "e-helse:reseptformidleren"
	RFScope     = "e-helse:reseptformidleren/rf"
)

// Setup is the prepared data folder.
type Setup struct {
	Dir        string
	ConfigPath string
	DEFTKey    string
	SFMKey     string
	SFMAPIKey  string
	WebKey     string
	EPJKey     string
	// Created is true when this call made the folder's contents.
	Created bool
}

// Prepare creates what is missing in dir: the key-encryption key, the demo
// client keys and the configuration (which names the data folder "." and
// the demo keys' public halves). Existing files are kept, so a user may edit
// the configuration and keep the data across restarts.
func Prepare(dir, listen string) (*Setup, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s := &Setup{
		Dir:        dir,
		ConfigPath: filepath.Join(dir, ConfigFile),
		DEFTKey:    filepath.Join(dir, DEFTKey),
		SFMKey:     filepath.Join(dir, SFMKey),
		SFMAPIKey:  filepath.Join(dir, SFMAPIKey),
		WebKey:     filepath.Join(dir, WebKey),
		EPJKey:     filepath.Join(dir, EPJKey),
	}
	if err := writeIfMissing(filepath.Join(dir, KEKFile), []byte(keys.NewKEK()+"\n"), 0o600); err != nil {
		return nil, err
	}
	deft, err := clientKey(s.DEFTKey, jose.PS256)
	if err != nil {
		return nil, err
	}
	sfm, err := clientKey(s.SFMKey, jose.ES256)
	if err != nil {
		return nil, err
	}
	sfmAPI, err := clientKey(s.SFMAPIKey, jose.ES256)
	if err != nil {
		return nil, err
	}
	web, err := clientKey(s.WebKey, jose.ES256)
	if err != nil {
		return nil, err
	}
	epj, err := clientKey(s.EPJKey, jose.ES256)
	if err != nil {
		return nil, err
	}
	people := Population()
	if err := writeIfMissing(filepath.Join(dir, PersonsFile), personsCSV(people), 0o600); err != nil {
		return nil, err
	}
	if err := writeIfMissing(filepath.Join(dir, HPRFile), hprYAML(people), 0o600); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.ConfigPath); err == nil {
		return s, nil
	}
	var buf bytes.Buffer
	err = configTemplate.Execute(&buf, map[string]string{
		"Listen": listen, "KEK": KEKFile, "Persons": PersonsFile, "HPR": HPRFile,
		"DEFTPublic": publicJSON(deft), "SFMPublic": publicJSON(sfm), "SFMAPIPublic": publicJSON(sfmAPI), "WebPublic": publicJSON(web), "WebClient": WebClientID,
		"EPJPublic": publicJSON(epj), "EPJClient": EPJClientID, "EPJURL": EPJURL,
		"DEFTClient": DEFTClientID, "SFMClient": SFMClientID, "SFMAPIClient": SFMAPIClientID, "SFMOrg": SFMOrg,
		"Supplier": SupplierOrg, "Customer": CustomerOrg, "Child": CustomerChild, "SFMID": SFMID,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := writeIfMissing(s.ConfigPath, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	s.Created = true
	return s, nil
}

func clientKey(path string, alg jose.SignatureAlgorithm) (*jose.JSONWebKey, error) {
	k, err := keyfile.ReadFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err = keyfile.Generate(alg, 0)
	if err != nil {
		return nil, err
	}
	if err := keyfile.WritePrivate(path, k); err != nil {
		return nil, err
	}
	return k, nil
}

func publicJSON(k *jose.JSONWebKey) string {
	b, err := keyfile.Public(k).MarshalJSON()
	if err != nil {
		panic(err) // a key we just generated or read always marshals
	}
	return string(b)
}

func writeIfMissing(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("demo: %w", err)
	}
	return f.Close()
}

var configTemplate = template.Must(template.New("config").Parse(`# Tillit development configuration, written by 'tillit serve --dev'.
# Edit it and restart: the file is applied to the store at every start.
# Every key is described in docs/configuration.md.
dev: true
# dev mode is a test environment: TestIDP and synthetic pids are allowed.
environment: test
listen: {{.Listen}}
data_dir: .
keys:
  encryption_key_file: {{.KEK}}
log:
  format: text

apis:
  - audience: nhn:deft
    name: DEFT REST API
    scopes: [nhn:deft/api]
    client_claims: [orgnr_supplier]
    # allow_bearer is false: DEFT requires DPoP.
  - audience: e-helse:sfm.api
    name: Sentral forskrivningsmodul (SFM)
    scopes: [e-helse:sfm.api/sfm.api]
    client_claims: [sfm-id, orgnr_supplier, nhn:sfm:journal-id]
    # SFM's own client may exchange tokens issued for SFM (token exchange).
    owners: [{{.SFMAPIClient}}]
  - audience: e-helse:reseptformidleren
    name: Reseptformidleren
    scopes: [e-helse:reseptformidleren/rf]
    # What an exchanged token may carry over from the EPJ's SFM token.
    subject_claims: [e-helse:sfm.api/client/claims/sfm-id, nhn:sfm:journal-id]

organisations:
  - number: "{{.Supplier}}"
    name: Tillit Demo Leverandør AS
  - number: "{{.Customer}}"
    name: Demo Legekontor AS
  - number: "{{.Child}}"
    name: Demo Legekontor avd. Sentrum
    parent: "{{.Customer}}"
  - number: "{{.SFMOrg}}"
    name: Demo SFM

client_systems:
  - id: demo-epj
    name: Demo EPJ
    supplier: "{{.Supplier}}"
    apis: [nhn:deft, e-helse:sfm.api]
  - id: demo-sfm-system
    name: SFM
    supplier: "{{.SFMOrg}}"
    apis: [e-helse:reseptformidleren]

clients:
  - id: {{.DEFTClient}}
    name: Demo EPJ for DEFT
    system: demo-epj
    tenancy: single-tenant
    organisation: "{{.Customer}}"
    child_organisations: ["{{.Child}}"]
    scopes: [nhn:deft/api]
    jwks: {"keys": [{{.DEFTPublic}}]}
  - id: {{.SFMClient}}
    name: Demo EPJ for SFM
    system: demo-epj
    tenancy: single-tenant
    organisation: "{{.Customer}}"
    scopes: [e-helse:sfm.api/sfm.api]
    claims:
      e-helse:sfm.api:
        sfm-id: {{.SFMID}}
    # SFM's own client may exchange this client's tokens.
    exchange_actors: [{{.SFMAPIClient}}]
    jwks: {"keys": [{{.SFMPublic}}]}
  - id: {{.SFMAPIClient}}
    name: SFM's own client
    system: demo-sfm-system
    tenancy: single-tenant
    organisation: "{{.SFMOrg}}"
    grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [e-helse:reseptformidleren/rf]
    jwks: {"keys": [{{.SFMAPIPublic}}]}
  # Logs people in at the TestIDP: PAR, then the browser, then the code at
  # a loopback redirect URI on whatever port the app listens on.
  - id: {{.WebClient}}
    name: Demo web login
    system: demo-epj
    tenancy: single-tenant
    organisation: "{{.Customer}}"
    grant_types: [authorization_code, refresh_token]
    scopes: [nhn:deft/api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid, helseid://scopes/identity/security_level, helseid://scopes/hpr/hpr_number]
    redirect_uris: [http://127.0.0.1/callback, http://localhost/callback]
    allow_loopback_any_port: true
    post_logout_redirect_uris: [http://127.0.0.1/logged-out]
    jwks: {"keys": [{{.WebPublic}}]}
  # examples/epj: a doctor logs in and prescribes through SFM with the
  # person's token, which SFM's own client may exchange.
  - id: {{.EPJClient}}
    name: Demo EPJ
    system: demo-epj
    tenancy: single-tenant
    organisation: "{{.Customer}}"
    grant_types: [authorization_code, refresh_token]
    scopes: [e-helse:sfm.api/sfm.api]
    identity_scopes: [openid, profile, offline_access, helseid://scopes/identity/pid, helseid://scopes/identity/security_level, helseid://scopes/hpr/hpr_number]
    claims:
      e-helse:sfm.api:
        sfm-id: {{.SFMID}}
    exchange_actors: [{{.SFMAPIClient}}]
    redirect_uris: [http://127.0.0.1/callback, http://localhost/callback]
    allow_loopback_any_port: true
    post_logout_redirect_uris: [{{.EPJURL}}/]
    jwks: {"keys": [{{.EPJPublic}}]}

identity_providers:
  - name: testidp-oidc
    type: testidp
    display_name: TestIDP

# The synthetic test population, and the doctors and nurses among them.
persons_file: {{.Persons}}
hpr_file: {{.HPR}}
`))
