package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/keyfile"
)

// issuer is the one public URL of every instance, as behind a load
// balancer. Nothing listens on it: each HTTP client of a test dials the
// instance it means (see pinned), so an instance gets the requests a
// balancer would pass on, for the issuer's URLs. The token endpoint
// checks a proof's htu and an assertion's aud against the issuer, never
// against the address it was reached at, so this is what a real
// deployment looks like to it.
const issuer = "http://localhost:8443"

// The registry every test's configuration declares.
const (
	singleClient = "single" // single-tenant, of customer
	multiClient  = "multi"  // multi-tenant, of supplier's client system
	supplier     = "310202029"
	customer     = "310303038"
	audience     = "nhn:deft"
	scope        = "nhn:deft/api"
)

// Timings the tests set in the configuration and on the command line. The
// defaults (2 s and a minute) would make the tests wait for nothing.
const (
	registryPoll   = 500 * time.Millisecond
	keyMaintenance = 250 * time.Millisecond
	// leaseTTL is how long a killed instance's name stays taken: a
	// restart waits for it (the default 30 s).
	leaseTTL = 3 * time.Second
)

// startTimeout bounds an instance's start: migrations, the registry, the
// first keys; slow only under the race detector on a busy machine.
const startTimeout = time.Minute

// setup is the shared part of some instances: their store, key-encryption
// key and registry, and the clients' key.
type setup struct {
	dir     string
	storage string
	kek     string
	key     *jose.JSONWebKey // the clients' private key (ES256)
}

func newSetup(t *testing.T, storage string) *setup {
	t.Helper()
	if err := trackSources(); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	key, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{dir: t.TempDir(), storage: storage, kek: base64.StdEncoding.EncodeToString(raw), key: key}
	s.config(t, "cli") // the operator's copy, for the tillit commands
	return s
}

// config writes the configuration of one instance and returns its path.
// Every instance gets the same file but for its instance name.
func (s *setup) config(t *testing.T, instance string) string {
	t.Helper()
	jwk, err := keyfile.Marshal(keyfile.Public(s.key))
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`issuer: %s
listen: 127.0.0.1:0
instance: %s
storage: %q
registry_poll: %s
log:
  level: info
  format: json
keys:
  algorithm: ES256
apis:
  - audience: %s
    name: DEFT
    scopes: [%s]
organisations:
  - number: "%s"
    name: Leverandør AS
  - number: "%s"
    name: Legesenter AS
client_systems:
  - id: epj
    name: EPJ
    supplier: "%s"
clients:
  - id: %s
    system: epj
    organisation: "%s"
    scopes: [%s]
    jwks: '%s'
  - id: %s
    system: epj
    tenancy: multi-tenant
    scopes: [%s]
    jwks: '%s'
`, issuer, instance, s.storage, registryPoll, audience, scope, supplier, customer, supplier,
		singleClient, customer, scope, jwk, multiClient, scope, jwk)
	path := filepath.Join(s.dir, instance+".yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// env is the environment of every tillit process: the key-encryption key,
// and no other TILLIT_ variable from the caller's.
func (s *setup) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TILLIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "TILLIT_KEY_ENCRYPTION_KEY="+s.kek)
}

// cli runs a tillit command on the shared store and returns its standard
// output; a command that fails fails the test.
func (s *setup) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.cliErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cliErr is cli for any goroutine. The configuration it names was
// written by newSetup.
func (s *setup) cliErr(args ...string) (string, error) {
	args = append(args, "--config", filepath.Join(s.dir, "cli.yaml"))
	cmd := exec.Command(tillitBin, args...)
	cmd.Env = s.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("tillit %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// instance is one running `tillit serve` process.
type instance struct {
	name   string
	cmd    *exec.Cmd
	addr   string // where it listens
	log    *lines
	exited chan struct{} // closed once the process has exited
	http   *http.Client  // dials this instance, whatever the URL
}

// lines is a process's output, kept for the test's log.
type lines struct {
	mu   sync.Mutex
	text []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	l.text = append(l.text, s)
	l.mu.Unlock()
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.text, "\n")
}

// start runs `tillit serve` for the named instance and waits until it
// listens. The instance is stopped when t ends; its log is shown if t
// failed, and a data race it reported fails t.
func (s *setup) start(t *testing.T, name string) *instance {
	t.Helper()
	inst, err := s.tryStart(t, name)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// errExited is tryStart's error for a process that exited during start.
var errExited = errors.New("exited during start")

// tryStart is start for a process that may refuse to start: its error
// wraps errExited, and inst.log says why.
func (s *setup) tryStart(t *testing.T, name string) (*instance, error) {
	t.Helper()
	cmd := exec.Command(tillitBin, "serve", "--config", s.config(t, name),
		"--key-maintenance-interval", keyMaintenance.String(), "--instance-lease-ttl", leaseTTL.String())
	cmd.Env = s.env()
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inst := &instance{name: name, cmd: cmd, log: &lines{}, exited: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			inst.log.add(line)
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "tillit is serving" {
				listening <- rec.Listen
			}
		}
		cmd.Wait() // after the last read, as os/exec requires
		close(inst.exited)
	}()
	t.Cleanup(func() {
		inst.stop()
		if t.Failed() {
			t.Logf("log of instance %s:\n%s", name, inst.log)
		}
		if strings.Contains(inst.log.String(), "DATA RACE") {
			t.Errorf("instance %s reported a data race:\n%s", name, inst.log)
		}
	})
	select {
	case inst.addr = <-listening:
	case <-inst.exited:
		return inst, fmt.Errorf("instance %s %w: %v\n%s", name, errExited, cmd.ProcessState, inst.log)
	case <-time.After(startTimeout):
		t.Fatalf("instance %s did not listen within %v\n%s", name, startTimeout, inst.log)
	}
	inst.http = pinned(func() string { return inst.addr })
	return inst, nil
}

// kill ends the process with SIGKILL: no shutdown, nothing flushed.
func (i *instance) kill() {
	i.cmd.Process.Signal(syscall.SIGKILL)
	<-i.exited
}

// stop asks the process to shut down (SIGTERM, as a service manager
// does), and kills it if it has not within the shutdown timeout.
func (i *instance) stop() {
	select {
	case <-i.exited:
		return
	default:
	}
	i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.exited:
	case <-time.After(15 * time.Second):
		i.kill()
	}
}

// pinned is an HTTP client that sends every request to addr(), as a load
// balancer in front of the issuer would.
func pinned(addr func() string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr())
			},
		},
	}
}

// client is a client library Client for id whose requests go to inst.
func (s *setup) client(t *testing.T, id string, hc *http.Client) *client.Client {
	t.Helper()
	cfg := client.Config{Issuer: issuer, ClientID: id, Key: s.key, HTTPClient: hc, Scopes: []string{scope}}
	if id == multiClient {
		cfg.Tenancy = client.MultiTenant
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A request is a client assertion and a DPoP proof, made by hand so that
// a test can send the same pair to two instances.
type request struct {
	assertion, proof string
}

// newRequest signs a new assertion for the single-tenant client and a
// new proof for the token endpoint carrying nonce.
func (s *setup) newRequest(t *testing.T, nonce string) request {
	t.Helper()
	a, err := s.client(t, singleClient, nil).ClientAssertion()
	if err != nil {
		t.Fatal(err)
	}
	return request{assertion: a, proof: s.proof(t, nonce)}
}

func (s *setup) proof(t *testing.T, nonce string) string {
	t.Helper()
	priv, err := keyfile.Signer(s.key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(priv, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	p, err := signer.Proof(http.MethodPost, issuer+"/connect/token", dpop.ProofOptions{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// answer is what the token endpoint said.
type answer struct {
	Status      int
	Nonce       string
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (a answer) String() string {
	if a.Status == http.StatusOK {
		return fmt.Sprintf("%d %s token", a.Status, a.TokenType)
	}
	return fmt.Sprintf("%d %s (%s)", a.Status, a.Error, a.Description)
}

// send posts a client_credentials request with r to inst, at the
// issuer's token endpoint URL.
func send(t *testing.T, inst *instance, r request) answer {
	t.Helper()
	return sendTo(t, inst, issuer+"/connect/token", r)
}

// sendTo posts the request to target, through inst.
func sendTo(t *testing.T, inst *instance, target string, r request) answer {
	t.Helper()
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {r.assertion},
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", r.proof)
	resp, err := inst.http.Do(req)
	if err != nil {
		t.Fatalf("instance %s: %v", inst.name, err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Nonce: resp.Header.Get("DPoP-Nonce")}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		t.Fatalf("instance %s: status %d, body: %v", inst.name, resp.StatusCode, err)
	}
	return a
}

// nonce gets a DPoP nonce from inst the way a client does first: a
// request without one, answered use_dpop_nonce. It spends nothing.
func (s *setup) nonce(t *testing.T, inst *instance) string {
	t.Helper()
	a := send(t, inst, s.newRequest(t, ""))
	if a.Status != http.StatusBadRequest || a.Error != "use_dpop_nonce" || a.Nonce == "" {
		t.Fatalf("instance %s, a proof without a nonce: %v, DPoP-Nonce %q; want 400 use_dpop_nonce with a nonce", inst.name, a, a.Nonce)
	}
	return a.Nonce
}

// claims decodes a JWT's header and payload, unverified.
func claims(jwt string) (header, payload map[string]any, err error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("not a JWS: %d parts", len(parts))
	}
	for i, v := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err == nil {
			err = json.Unmarshal(b, v)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("JWT part %d: %w", i, err)
		}
	}
	return header, payload, nil
}

// claim is one string claim of a JWT's header (in) or payload.
func claim(t *testing.T, jwt string, header bool, name string) string {
	t.Helper()
	h, p, err := claims(jwt)
	if err != nil {
		t.Fatal(err)
	}
	m := p
	if header {
		m = h
	}
	v, _ := m[name].(string)
	return v
}

// jwks fetches inst's published signing keys.
func jwks(t *testing.T, inst *instance) jose.JSONWebKeySet {
	t.Helper()
	resp, err := inst.http.Get(issuer + "/.well-known/openid-configuration/jwks")
	if err != nil {
		t.Fatalf("instance %s: %v", inst.name, err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("instance %s: JWKS: status %d, %v", inst.name, resp.StatusCode, err)
	}
	return set
}

// onlyAlg is the keys of set with algorithm alg.
func onlyAlg(set jose.JSONWebKeySet, alg jose.SignatureAlgorithm) jose.JSONWebKeySet {
	var out jose.JSONWebKeySet
	for _, k := range set.Keys {
		if k.Algorithm == string(alg) {
			out.Keys = append(out.Keys, k)
		}
	}
	return out
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// eventually calls f every 50 ms until it returns true or within passes,
// and reports how long that took.
func eventually(t *testing.T, within time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if f() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
