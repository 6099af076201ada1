package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
)

// Defaults for the zero values of Config.
const (
	DefaultConcurrency = 32
	DefaultDuration    = 10 * time.Second
	DefaultTimeout     = 10 * time.Second
)

// MaxConcurrency bounds Config.Concurrency: far more clients than a
// machine can keep busy only measure the scheduler.
const MaxConcurrency = 10000

// maxResponseSize bounds a token response read by the generator; a JWT
// access token with HelseID's claims is a few KiB.
const maxResponseSize = 1 << 20

// assertionLifetime is exp - iat of the assertions sent: the client
// package's default, so that the load is what its clients send.
const assertionLifetime = 10 * time.Second

// Wire values (RFC 6749 §4.4, RFC 7523 §2.2, RFC 9449 §8).
const (
	grantTypeClientCredentials   = "client_credentials"
	clientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	codeUseDPoPNonce             = "use_dpop_nonce"
	assertionType                = "client-authentication+jwt"
	proofType                    = "dpop+jwt"
	headerDPoPNonce              = "DPoP-Nonce"
)

// Labels for failures that carry no OAuth error code. They are in
// parentheses so that they cannot be taken for a code the server sent.
const (
	LabelTransport     = "(transport)"
	LabelNotOAuth      = "(no OAuth error in the body)"
	LabelBadResponse   = "(invalid token response)"
	LabelWrongType     = "(unexpected token_type)"
	LabelClientFailure = "(client-side failure)"
)

// Config describes one run.
type Config struct {
	// Issuer is the issuer URL; the token endpoint comes from its discovery
	// document, and client assertions are addressed to it.
	Issuer   string
	ClientID string
	// Key is the client's private key with its alg. It signs the client
	// assertions and, unless Bearer, the DPoP proofs, as NHN's libraries do.
	Key      *jose.JSONWebKey
	Scopes   []string
	Resource string
	// Concurrency is the number of clients, each with one request in flight
	// at a time on its own keep-alive connection. Zero means
	// DefaultConcurrency.
	Concurrency int
	// Rate, when above zero, paces the clients: together they start Rate
	// tokens per second, evenly spread, as a steady stream of clients
	// would, instead of one after the other as fast as the server answers.
	// A client whose answer comes late starts its next token at once, and
	// after a stall of more than a second it does not make up what it
	// missed; so a server that cannot keep up shows as a rate below Rate.
	// Latency is from each request's start, not from when it was due.
	Rate float64
	// Duration is the measured window. Zero means DefaultDuration.
	Duration time.Duration
	// Warmup runs before the window and is not counted: connections are
	// opened, nonces fetched and the server's caches (and JIT, for a Node
	// peer) warmed. Zero means none.
	Warmup time.Duration
	// Bearer sends no DPoP proof.
	Bearer bool
	// FreshNonce never reuses a nonce: every token request is first sent
	// without one and makes the use_dpop_nonce round trip, as NHN's
	// libraries do because they keep no nonce between requests.
	FreshNonce bool
	// ServerPID, when not zero, is the server process whose CPU time is
	// read from /proc/PID/stat at both ends of the window.
	ServerPID int
	// Timeout bounds each HTTP request. Zero means DefaultTimeout.
	Timeout time.Duration
	// Connect, when set, is the host:port every connection goes to instead
	// of the issuer's, as behind a load balancer: requests still name the
	// issuer (Host, discovery, htu, aud). It drives one of several
	// instances that share an issuer.
	Connect string
	// Now is the clock for assertion and proof times only; latency and
	// the window use the real clock. Nil means time.Now. Tests set it to
	// the test server's clock.
	Now func() time.Time
}

func (cfg *Config) check() error {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Issuer == "":
		return errors.New("loadtest: no issuer")
	case cfg.ClientID == "":
		return errors.New("loadtest: no client ID")
	case cfg.Key == nil:
		return errors.New("loadtest: no key")
	case cfg.Concurrency < 0 || cfg.Concurrency > MaxConcurrency:
		return fmt.Errorf("loadtest: concurrency %d is not between 1 and %d", cfg.Concurrency, MaxConcurrency)
	case cfg.Duration < 0:
		return errors.New("loadtest: negative duration")
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return fmt.Errorf("loadtest: rate %v is not a positive number of tokens per second", cfg.Rate)
	case cfg.Warmup < 0:
		return errors.New("loadtest: negative warm-up")
	case cfg.Timeout < 0:
		return errors.New("loadtest: negative timeout")
	case cfg.ServerPID < 0:
		return fmt.Errorf("loadtest: server pid %d is negative", cfg.ServerPID)
	case cfg.Bearer && cfg.FreshNonce:
		return errors.New("loadtest: FreshNonce needs DPoP, and Bearer sends no proof")
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("loadtest: scope %q is empty or has white space", s)
		}
	}
	return nil
}

// Run drives the token endpoint for cfg.Warmup and then cfg.Duration and
// returns what was measured in the second part. Token errors are counted in
// the Result, not returned: a run in which every request fails still
// returns a Result. An error means the run could not be made (bad Config,
// discovery failed, the server PID cannot be read) or ctx ended it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r, err := newRunner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.http.CloseIdleConnections()
	return r.run(ctx)
}

// runner holds what the workers share. Everything but nonce and the
// counters is read-only once the workers start.
type runner struct {
	cfg        Config
	assertions *jwsSigner
	proofs     *jwsSigner // nil with Bearer
	claims     *claimWriter
	// http reads the discovery document; token requests go through
	// target.
	http       *http.Client
	endpoint   string
	target     *target
	bodyPrefix string
	wantType   string

	// The window, on the monotonic clock: a token counts if its answer
	// arrives inside it.
	winStart, winEnd time.Time

	// nonce is the last DPoP-Nonce the server sent, shared by all
	// workers as one client application shares it.
	nonce atomic.Pointer[string]
	dials atomic.Int64
}

// Transport is an HTTP transport that no proxy from the environment comes
// between, and that with connect (host:port) sends every connection there,
// whatever the URL names, as a load balancer in front of several
// instances of one issuer would: the requests still name the issuer
// (Host, TLS server name, htu, aud). tillit token and call use it too.
func Transport(connect string) *http.Transport {
	tr := &http.Transport{}
	if connect != "" {
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, connect)
		}
	}
	return tr
}

func newRunner(ctx context.Context, cfg Config) (*runner, error) {
	r := &runner{cfg: cfg, wantType: "DPoP"}
	r.http = &http.Client{Transport: Transport(cfg.Connect), Timeout: cfg.Timeout}

	// The client library reads the discovery document and checks it: the
	// token endpoint is taken from the issuer the way a HelseID client
	// takes it.
	c, err := client.New(client.Config{
		Issuer:     cfg.Issuer,
		ClientID:   cfg.ClientID,
		Key:        cfg.Key,
		HTTPClient: r.http,
		Now:        cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	if r.assertions, err = newJWSSigner(cfg.Key, assertionType, false); err != nil {
		return nil, err
	}
	if cfg.Bearer {
		r.wantType = "Bearer"
	} else if r.proofs, err = newJWSSigner(cfg.Key, proofType, true); err != nil {
		return nil, err
	}
	md, err := c.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	r.endpoint = md.TokenEndpoint
	if r.target, err = newTarget(r.endpoint, cfg.Timeout, &r.dials); err != nil {
		return nil, err
	}
	if cfg.Connect != "" {
		r.target.addr = cfg.Connect
	}
	// htu is the endpoint without query and fragment (RFC 9449 §4.2), as
	// dpop.Signer writes it.
	u, err := url.Parse(r.endpoint)
	if err != nil {
		return nil, fmt.Errorf("loadtest: token endpoint: %w", err)
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	htu := u.String()
	// Assertions are addressed to the issuer, as NHN's libraries and the
	// client package address them.
	r.claims = newClaimWriter(cfg.ClientID, cfg.Issuer, htu, assertionLifetime)

	// The form is the same for every request but the assertion, which
	// goes last; a compact JWS needs no escaping.
	var b strings.Builder
	b.WriteString("grant_type=" + grantTypeClientCredentials)
	b.WriteString("&client_id=" + url.QueryEscape(cfg.ClientID))
	if len(cfg.Scopes) > 0 {
		b.WriteString("&scope=" + url.QueryEscape(strings.Join(cfg.Scopes, " ")))
	}
	if cfg.Resource != "" {
		b.WriteString("&resource=" + url.QueryEscape(cfg.Resource))
	}
	b.WriteString("&client_assertion_type=" + url.QueryEscape(clientAssertionTypeJWTBearer))
	b.WriteString("&client_assertion=")
	r.bodyPrefix = b.String()

	if cfg.ServerPID != 0 {
		// Fail before the run rather than after it.
		if _, err := processCPU(cfg.ServerPID); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// snapshot is the CPU counters at one end of the window.
type snapshot struct {
	at         time.Time
	self       time.Duration
	selfErr    error
	server     time.Duration
	serverErr  error
	threads    map[int]time.Duration
	threadsErr error
	machine    machineTimes
	machineErr error
}

func (r *runner) snapshot() snapshot {
	s := snapshot{at: time.Now()}
	s.self, s.selfErr = selfCPU()
	if r.cfg.ServerPID != 0 {
		s.server, s.serverErr = processCPU(r.cfg.ServerPID)
		s.threads, s.threadsErr = threadCPU(r.cfg.ServerPID)
	}
	s.machine, s.machineErr = machineCPU()
	return s
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	r.winStart = start.Add(r.cfg.Warmup)
	r.winEnd = r.winStart.Add(r.cfg.Duration)

	workers := make([]*worker, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{r: r, conn: conn{t: r.target}, errors: map[errorKey]*ErrorCount{}}
		workers[i] = w
		wg.Go(func() {
			defer w.conn.close()
			w.run(wctx, i)
		})
	}
	finish := func(err error) (*Result, error) {
		stop()
		wg.Wait()
		return nil, err
	}

	if err := sleepUntil(ctx, r.winStart); err != nil {
		return finish(err)
	}
	before := r.snapshot()
	if err := sleepUntil(ctx, r.winEnd); err != nil {
		return finish(err)
	}
	after := r.snapshot()
	// Requests still in flight end after the window and are not counted;
	// cancelling them ends the run now rather than when they answer.
	stop()
	wg.Wait()
	return r.result(workers, before, after), nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("loadtest: %w", ctx.Err())
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// worker is one client. Its counters are its own, so the hot path takes no
// lock; they are added up after the run.
type worker struct {
	r    *runner
	conn conn
	// Scratch space kept between requests: the response body, the
	// claims and the JWS being signed.
	body      []byte
	claims    []byte
	jws       []byte
	latencies []time.Duration
	tokens    int64
	requests  int64
	trips     int64
	errors    map[errorKey]*ErrorCount
}

type errorKey struct {
	code   string
	status int
}

// failure is why one token was not issued.
type failure struct {
	code   string
	status int
	detail string
}

// run gets tokens until the window ends. It is client i of the
// Concurrency, which matters when they are paced: their starts are spread
// over one interval.
func (w *worker) run(ctx context.Context, i int) {
	var every time.Duration
	next := time.Now()
	if rate := w.r.cfg.Rate; rate > 0 {
		every = time.Duration(float64(time.Second) * float64(w.r.cfg.Concurrency) / rate)
		next = next.Add(every * time.Duration(i) / time.Duration(w.r.cfg.Concurrency))
	}
	for ctx.Err() == nil {
		if every > 0 {
			if d := time.Until(next); d > 0 {
				pause(ctx, d)
				if ctx.Err() != nil {
					return
				}
			}
			if next = next.Add(every); time.Since(next) > time.Second {
				next = time.Now()
			}
		}
		start := time.Now()
		if !start.Before(w.r.winEnd) {
			return
		}
		attempts, trips, f := w.token(ctx)
		end := time.Now()
		if !end.Before(w.r.winStart) && !end.After(w.r.winEnd) {
			w.record(end.Sub(start), attempts, trips, f)
		}
		if f != nil && f.code == LabelTransport {
			// A server that is down refuses at once; without a pause the
			// generator would spin and take the CPU from the server.
			pause(ctx, 10*time.Millisecond)
		}
	}
}

func (w *worker) record(latency time.Duration, attempts, trips int64, f *failure) {
	w.requests += attempts
	w.trips += trips
	if f == nil {
		w.tokens++
		w.latencies = append(w.latencies, latency)
		return
	}
	k := errorKey{f.code, f.status}
	if e := w.errors[k]; e != nil {
		e.Count++
		return
	}
	w.errors[k] = &ErrorCount{Error: f.code, Status: f.status, Count: 1, Example: printable(f.detail)}
}

// token gets one token: one request, or two when the server asks for a
// nonce (RFC 9449 §8). A second use_dpop_nonce is a failure: a server
// that keeps asking would otherwise hold the client in a loop.
func (w *worker) token(ctx context.Context) (attempts, trips int64, f *failure) {
	var nonce string
	if w.r.proofs != nil && !w.r.cfg.FreshNonce {
		if p := w.r.nonce.Load(); p != nil {
			nonce = *p
		}
	}
	for {
		attempts++
		fresh, f := w.attempt(ctx, nonce)
		if fresh != "" && !w.r.cfg.FreshNonce {
			w.r.keepNonce(fresh)
		}
		if f == nil {
			return attempts, trips, nil
		}
		if f.code == codeUseDPoPNonce && f.status == http.StatusBadRequest && fresh != "" &&
			w.r.proofs != nil && trips == 0 {
			trips++
			nonce = fresh
			continue
		}
		return attempts, trips, f
	}
}

// keepNonce remembers n unless it is already the one kept: a server may
// send the same nonce with every answer, and storing it each time would
// make every worker write the one shared cache line.
func (r *runner) keepNonce(n string) {
	if p := r.nonce.Load(); p != nil && *p == n {
		return
	}
	r.nonce.Store(&n)
}

// attempt sends one token request with a new assertion and, with DPoP, a
// new proof carrying nonce. It returns the DPoP-Nonce the server sent, if
// any, and nil or why no token came back.
func (w *worker) attempt(ctx context.Context, nonce string) (string, *failure) {
	form, proof, err := w.newRequest(nonce)
	if err != nil {
		return "", &failure{code: LabelClientFailure, detail: err.Error()}
	}
	resp, err := w.conn.post(ctx, form, proof, &w.body)
	switch {
	case errors.Is(err, errTooLarge):
		return "", &failure{code: LabelBadResponse, status: resp.status, detail: err.Error()}
	case err != nil:
		return "", &failure{code: LabelTransport, detail: err.Error()}
	case resp.status != http.StatusOK:
		return resp.nonce, oauthFailure(resp.status, w.body)
	}
	// The body is read to check that a token of the right type came back;
	// the token itself is never kept or shown.
	tokenType, ok := tokenTypeOf(w.body)
	if !ok {
		return resp.nonce, &failure{code: LabelBadResponse, status: resp.status, detail: "no access_token in a JSON body"}
	}
	if !strings.EqualFold(tokenType, w.r.wantType) {
		return resp.nonce, &failure{code: LabelWrongType, status: resp.status,
			detail: fmt.Sprintf("token_type %q, want %q", tokenType, w.r.wantType)}
	}
	return resp.nonce, nil
}

// tokenTypeOf returns the token_type of a token response that has a
// non-empty access_token. Tillit and oidc-provider write compact JSON, which
// is read by looking for the two members; anything else is decoded. Decoding
// every body cost the generator 8% of its CPU, for a check that only has to
// catch a server that answers 200 without the token asked for.
func tokenTypeOf(body []byte) (string, bool) {
	if i := bytes.Index(body, []byte(`"access_token":"`)); i >= 0 && len(body) > i+16 && body[i+16] != '"' {
		const key = `"token_type":"`
		if j := bytes.Index(body, []byte(key)); j >= 0 {
			v := body[j+len(key):]
			if k := bytes.IndexByte(v, '"'); k > 0 && bytes.IndexByte(v[:k], '\\') < 0 {
				return string(v[:k]), true
			}
		}
	}
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return "", false
	}
	return t.TokenType, true
}

// newRequest builds the form and the DPoP proof of one token request: the
// client-side cost of a token, two signatures and little else.
func (w *worker) newRequest(nonce string) (form, proof string, err error) {
	r := w.r
	now := r.cfg.Now()
	w.claims = r.claims.assertion(w.claims, now)
	assertion, jws, err := r.assertions.sign(w.jws, w.claims)
	w.jws = jws
	if err != nil {
		return "", "", err
	}
	form = r.bodyPrefix + assertion
	if r.proofs != nil {
		w.claims = r.claims.proof(w.claims, now, nonce)
		proof, w.jws, err = r.proofs.sign(w.jws, w.claims)
		if err != nil {
			return "", "", err
		}
	}
	return form, proof, nil
}

// oauthFailure reads an error answer (RFC 6749 §5.2).
func oauthFailure(status int, body []byte) *failure {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		return &failure{code: LabelNotOAuth, status: status}
	}
	return &failure{code: e.Error, status: status, detail: e.Description}
}

// printable keeps server text fit for a terminal: no control characters,
// at most 200 bytes.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		i := 200
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}
