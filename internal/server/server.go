package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/login"
	"github.com/tillit-sts/tillit/internal/metrics"
	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// Options are what a Server takes besides its configuration.
type Options struct {
	Log *slog.Logger
	// Now is the clock; nil means time.Now. Tests use a fake one.
	Now func() time.Time
	// Store, when set, is used instead of opening cfg.Storage; the caller
	// keeps ownership and closes it.
	Store store.Store
	// Login takes over validated authorization requests instead of the
	// login pages (internal/login), which are used when it is nil.
	Login authorize.Login
	// KeyMaintenance is how often the server reloads its signing and
	// nonce keys from the store and rotates them when due; zero means
	// once a minute. Multi-process tests shorten it so that a rotation
	// reaches every instance within a test. It is not a configuration
	// setting: a new nonce key's 5-minute lead before it issues nonces
	// assumes that every instance reloads well within it.
	KeyMaintenance time.Duration
	// LeaseTTL is how long the server's claim on its instance name lasts
	// unless renewed (DefaultLeaseTTL when zero); multi-process tests
	// shorten it so that a crashed server's name is free soon.
	LeaseTTL time.Duration
	// WaitForLease makes New, when another server holds the instance
	// name, watch that server's lease rather than refuse at once: if it
	// is renewed New refuses, if it expires New takes it over (the
	// restart of a crashed server). tillit serve sets it.
	WaitForLease bool
	// Source, when set, is the configuration file cfg's settings came
	// from: its registry is applied from it rather than from cfg, and
	// only when the store does not hold it already. tillit serve sets it.
	Source *config.Source
}

// Server is one token service instance.
type Server struct {
	cfg        *config.Config
	log        *slog.Logger
	now        func() time.Time
	issuer     string
	store      store.Store
	ownStore   bool
	registry   *registry.Watcher
	keysEvery  time.Duration
	keys       *keys.Manager
	assertions *clientauth.Verifier
	proofs     *dpop.Verifier
	token      *token.Endpoint
	introspect *token.Introspection
	revoke     *token.Revocation
	userinfo   *token.Userinfo
	// endSessionURL is the end-session endpoint's URL once the server
	// mounts one (/connect/endsession, with the login sessions); discovery
	// advertises end_session_endpoint only then.
	endSessionURL string
	authorize     *authorize.Endpoint
	login         *login.Login
	handler       http.Handler
	metrics       *metrics.Metrics
	auditKey      audit.Key
	heads         *headLog
	refusals      *audit.Refusals
	// requestTimeout is every request's deadline (http.request_timeout).
	requestTimeout time.Duration
	writes         writeHealth
	certs          *certReloader // nil without tls
	// The instance lease (lease.go): who this server is in it, for how
	// long it takes it, whether it holds it, and whether another server
	// has taken it since.
	holder    string
	leaseTTL  time.Duration
	leased    bool
	leaseLost atomic.Bool
}

// How often the background jobs run.
const (
	keyMaintenanceInterval = time.Minute
	replayCleanupInterval  = time.Minute
	auditPruneInterval     = time.Hour
	// Login state lives for minutes (codes, pushed requests) to hours
	// (sessions); a record past its expiry already counts as gone, so the
	// sweep only bounds the tables.
	loginStateCleanupInterval = time.Minute
	// refusalsInterval is how often the aggregate of the refusals is
	// looked at; it is written at most once every audit.AggregateEvery.
	refusalsInterval = 10 * time.Second
)

// New builds a server from a validated configuration: it opens the store,
// applies the registry the configuration declares, and loads or creates the
// keys.
func New(ctx context.Context, cfg *config.Config, opt Options) (*Server, error) {
	s := &Server{cfg: cfg, log: opt.Log, now: opt.Now, issuer: strings.TrimSuffix(cfg.Issuer, "/"), keysEvery: opt.KeyMaintenance,
		requestTimeout: cfg.HTTP.RequestTimeout, holder: leaseHolder(), leaseTTL: opt.LeaseTTL}
	if s.keysEvery <= 0 {
		s.keysEvery = keyMaintenanceInterval
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	kek, err := cfg.KeyEncryptionKey()
	if err != nil {
		return nil, err
	}
	if kek == nil {
		// Outside --dev, serve refuses to start without one: private keys
		// are never stored in clear.
		return nil, errors.New("server: no key-encryption key: set TILLIT_KEY_ENCRYPTION_KEY or keys.encryption_key_file")
	}
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		return nil, err
	}
	auditKey, err := audit.DeriveKey(kek)
	if err != nil {
		return nil, err
	}
	s.auditKey = auditKey
	if opt.Store != nil {
		s.store = opt.Store
	} else {
		if s.store, err = openStore(ctx, cfg.Storage, auditKey, cfg.CommitDelay, true); err != nil {
			return nil, err
		}
		s.ownStore = true
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	// Before anything is written: a second server with this instance
	// name would break its audit chain.
	if err := s.acquireLease(ctx, opt.WaitForLease); err != nil {
		return nil, err
	}

	if opt.Source != nil {
		s.registry, err = s.applySource(ctx, cfg, opt.Source)
	} else {
		s.registry, err = s.applyRegistry(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	// The file's registry is in the store and the snapshot now: the
	// server keeps neither it nor the file's YAML.
	s.cfg = cfg.WithoutRegistry()

	s.metrics = metrics.New()
	s.refusals = audit.NewRefusals(cfg.Instance, s.now())
	kc := KeysConfig(cfg)
	// The ID-token algorithms clients ask for, from the registry as it is
	// at each maintenance: a client added or changed later gets its key
	// within a tick.
	kc.IDTokenAlgorithms = func() []jose.SignatureAlgorithm { return s.registry.Current().IDTokenAlgorithms() }
	s.keys, err = keys.NewManager(ctx, s.store, sealer, kc, s.now, s.log)
	if err != nil {
		return nil, err
	}
	s.assertions = &clientauth.Verifier{
		Algorithms:  cfg.ClientAssertion.Algorithms(),
		Audiences:   []string{s.issuer, s.issuer + "/", s.issuer + token.Path},
		MaxLifetime: cfg.ClientAssertion.MaxLifetime,
		ClockSkew:   cfg.ClientAssertion.ClockSkew,
	}
	s.proofs = &dpop.Verifier{Algorithms: jws.Algorithms, Window: cfg.DPoP.ProofWindow}
	if cfg.DPoP.RequireNonce {
		s.proofs.Nonces = s.keys.Nonces()
	}
	s.heads = &headLog{log: s.log, instance: cfg.Instance, every: cfg.Audit.HeadLogEveryRecords}
	if err := s.heads.fromStore(ctx, s.store); err != nil {
		return nil, err
	}
	shared := token.Shared{
		Issuer:       s.issuer,
		Registry:     s.registry.Current,
		Assertions:   s.assertions,
		Decisions:    watchDecisions(s.store, s.heads, &s.writes),
		Refusals:     s.refusals,
		Instance:     cfg.Instance,
		Metrics:      s.metrics,
		AddressLimit: limiter(cfg.RateLimit.PerAddress, cfg.RateLimit.AddressBurst, cfg.RateLimit.MaxAddresses),
		ClientLimit:  limiter(cfg.RateLimit.PerClient, cfg.RateLimit.ClientBurst, 0),
		MaxBody:      cfg.HTTP.MaxBodyBytes,
		Now:          s.now,
		Log:          s.log,
	}
	names, err := s.nameSealer(ctx)
	if err != nil {
		return nil, err
	}
	s.token = token.New(token.Config{
		Shared:          shared,
		Keys:            s.keys,
		Proofs:          s.proofs,
		Refresh:         s.store,
		PublicKeys:      s.keys.JWKS,
		TokenLifetime:   cfg.Tokens.AccessTokenLifetime,
		Codes:           s.store,
		RefreshLifetime: cfg.Tokens.RefreshTokenLifetime,
		PseudonymKey:    s.keys.PseudonymKey(),
		Persons:         s.personRegister(),
		Names:           names,
	})
	s.authorize = authorize.New(authorize.Config{
		Issuer:    s.issuer,
		Registry:  s.registry.Current,
		Store:     s.store,
		Decisions: shared.Decisions,
		// PAR authenticates clients as the token endpoint does, with the
		// same limits and audit chain; its URL is also a valid aud.
		Gate: token.NewGate(shared, s.proofs, "par", authorize.PathPAR),
		RequestObjects: &authorize.RequestObjects{
			Algorithms:  s.assertions.Algorithms,
			Audiences:   []string{s.issuer, s.issuer + "/"},
			MaxLifetime: cfg.ClientAssertion.MaxLifetime,
			ClockSkew:   cfg.ClientAssertion.ClockSkew,
		},
		Login:    s.loginSeam(opt.Login),
		Test:     cfg.Test(),
		Instance: cfg.Instance,
		// The login pages' error page; plain for a Login of the caller's.
		ErrorPage: errorPage(opt.Login),
		Now:       s.now,
		Log:       s.log,
	})
	if opt.Login == nil {
		if err := s.newLogin(ctx, shared.Decisions); err != nil {
			return nil, err
		}
	}
	s.introspect = token.NewIntrospection(token.IntrospectionConfig{Shared: shared, PublicKeys: s.keys.JWKS})
	s.revoke = token.NewRevocation(token.RevocationConfig{Shared: shared, Refresh: s.store, PublicKeys: s.keys.JWKS})

	s.userinfo = token.NewUserinfo(token.UserinfoConfig{
		Issuer: s.issuer, PublicKeys: s.keys.JWKS, Proofs: s.proofs, JTIs: s.store,
		Registry: s.registry.Current, Names: names, Persons: s.personRegister(), Now: s.now, Log: s.log,
	})

	mux := http.NewServeMux()
	s.token.Mount(mux)
	s.userinfo.Mount(mux)
	s.introspect.Mount(mux)
	s.revoke.Mount(mux)
	s.authorize.Mount(mux)
	if s.login != nil {
		s.login.Mount(mux)
	}
	mux.HandleFunc("GET "+PathDiscovery, s.serveDiscovery)
	mux.HandleFunc("GET "+PathOAuthMetadata, s.serveDiscovery)
	mux.HandleFunc("GET "+PathJWKS, s.serveJWKS)
	mux.HandleFunc("GET "+PathExpiredJWKS, s.serveExpiredJWKS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.serveReady)
	if cfg.Metrics.Listen == "" {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	if cfg.TLS.Enabled() {
		if s.certs, err = newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, s.now, s.log); err != nil {
			return nil, err
		}
	}
	var h http.Handler = mux
	if ps := proxies(cfg.RateLimit.Proxies()); len(ps) > 0 {
		h = ps.behindProxies(h)
	}
	s.handler = s.middleware(h)
	// A broken chain is logged now, but is no reason to refuse to
	// start: the server says it is not ready, and serves again once the
	// chain is resealed.
	_ = s.checkAuditChain(ctx)
	ok = true
	return s, nil
}

// Authorize is the authorization endpoint, for the login pages to
// complete logins through.
func (s *Server) Authorize() *authorize.Endpoint { return s.authorize }

// persons reads the person register from the store.
type persons struct{ s store.Store }

func (p persons) Person(ctx context.Context, pid string) (store.Person, error) {
	return store.Get(ctx, p.s, store.PersonKind, pid)
}

// applyRegistry loads the store's registry, applies the one that cfg
// declares to it and returns the watcher. The watcher's snapshot serves as
// Sync's read of the store, and the keys the configuration parsed go to
// the snapshot: a start reads, decodes and parses the registry once.
func (s *Server) applyRegistry(ctx context.Context, cfg *config.Config) (*registry.Watcher, error) {
	want, err := cfg.Registry()
	if err != nil {
		return nil, err
	}
	return s.sync(ctx, want, cfg.RegistryPoll)
}

// sync loads the store's registry and applies want to it.
func (s *Server) sync(ctx context.Context, want registry.Registry, poll time.Duration) (*registry.Watcher, error) {
	w, err := registry.NewWatcher(ctx, s.store, poll, want.Keys)
	if err != nil {
		return nil, err
	}
	w.Log = s.log
	if _, err := w.Sync(ctx, want); err != nil {
		return nil, fmt.Errorf("server: apply the registry: %w", err)
	}
	return w, nil
}

// KeysConfig is the key life cycle a configuration sets.
func KeysConfig(cfg *config.Config) keys.Config {
	return keys.Config{
		Algorithm:        cfg.Keys.Algorithm,
		PublishLead:      cfg.Keys.PublishLead,
		RotationPeriod:   cfg.Keys.RotationPeriod,
		TokenLifetime:    cfg.Tokens.AccessTokenLifetime,
		ExpiredRetention: cfg.Keys.ExpiredRetention,
		NonceSlot:        cfg.DPoP.NonceSlot,
	}
}

// Open opens the store a storage setting names, for commands that read it
// or change the registry; it cannot write audit records.
func Open(ctx context.Context, storage string) (store.Store, error) {
	return openStore(ctx, storage, nil, 0, false)
}

// OpenAudit opens the store a storage setting names with the audit key, for
// commands that write the log's own records (tillit audit reseal).
func OpenAudit(ctx context.Context, storage string, key audit.Key) (store.Store, error) {
	return openStore(ctx, storage, key, 0, false)
}

// limiter is a rate limiter, or nil (no limit) for a rate of zero. The
// per-client one needs no bound of its own (maxKeys 0, the package
// default): only registered clients reach it.
func limiter(rate float64, burst, maxKeys int) *ratelimit.Limiter {
	if rate <= 0 {
		return nil
	}
	return ratelimit.New(rate, burst, maxKeys)
}

// serveReady answers 200 when the store answers, its writes work (the
// decisions committed lately, or a probe write: writeHealth) and a key
// signs, 503 otherwise: a load balancer sends no token requests to an
// instance that could not answer them.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	problem := ""
	if s.leaseLost.Load() {
		problem = "instance served by another server"
	} else if err := s.store.Ping(ctx); err != nil {
		problem = "store unreachable"
		s.log.Warn("not ready", "request_id", requestid.From(r.Context()), "err", err)
	} else if err := s.writes.check(ctx, s.store, s.now()); err != nil {
		problem = "store cannot write"
		s.log.Warn("not ready", "request_id", requestid.From(r.Context()), "err", err)
	} else if _, err := s.keys.Signer(); err != nil {
		problem = "no signing key"
	} else if err := s.checkAuditChain(ctx); errors.Is(err, store.ErrAuditChainBroken) {
		problem = "audit chain broken"
	} else if err != nil {
		problem = "store unreachable"
	}
	w.Header().Set("Cache-Control", "no-store")
	if problem != "" {
		http.Error(w, problem, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// checkAuditChain checks that this instance's audit chain ends as the
// store wrote it (audit.CheckTip), and logs what is wrong when it does not.
// Decisions on a broken chain are refused (the store will not fork or
// restart it), so the instance must not look ready until an operator has
// looked and resealed it.
func (s *Server) checkAuditChain(ctx context.Context) error {
	tip, err := s.store.AuditTip(ctx, s.cfg.Instance)
	if err != nil {
		s.log.Warn("not ready: audit chain not read", "instance", s.cfg.Instance, "err", err)
		return err
	}
	if err := audit.CheckTip(s.auditKey, tip); err != nil {
		s.log.Error("audit chain broken: token requests are refused until it is verified and resealed "+
			"(tillit audit verify; tillit audit reseal --instance "+s.cfg.Instance+")",
			"instance", s.cfg.Instance, "err", err)
		return err
	}
	return nil
}

// PruneAudit removes the audit records older than audit.retention from
// every chain in the store, not only this instance's (an instance that is
// gone leaves a chain nobody else would prune), each with a checkpoint
// that keeps it verifiable, and reports how many it removed. Several
// servers may run it at once: the store serialises them per chain, and the
// later finds nothing to remove. A broken chain is left alone and reported;
// the others are pruned. With no retention it does nothing.
func (s *Server) PruneAudit(ctx context.Context) (int64, error) {
	if s.cfg.Audit.Retention <= 0 {
		return 0, nil
	}
	instances, err := s.store.AuditInstances(ctx)
	if err != nil {
		return 0, err
	}
	now := s.now()
	before := now.Add(-s.cfg.Audit.Retention)
	var total int64
	var errs []error
	for _, inst := range instances {
		n, err := s.store.PruneAuditChain(ctx, inst, before, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			s.log.Info("audit records removed for retention", "instance", inst, "records", n, "before", before)
		}
		total += n
	}
	return total, errors.Join(errs...)
}

// WriteRefusals writes the aggregate record of the refusals that got no
// record of their own since the last aggregate (audit.Refusals), when
// there were any and the last was written at least audit.AggregateEvery
// ago by the server's clock. A background job calls it every few seconds.
// When the write fails the counts are lost from the audit log, but not
// from the error, which carries them, nor from the metrics.
func (s *Server) WriteRefusals(ctx context.Context) error { return s.writeRefusals(ctx, false) }

func (s *Server) writeRefusals(ctx context.Context, final bool) error {
	now := s.now()
	rec, ok := s.refusals.Take(now, final)
	if !ok {
		return nil
	}
	rec, err := s.store.CommitDecision(ctx, now, store.Decision{Audit: rec})
	if err != nil {
		return fmt.Errorf("server: write the refusals aggregate %s: %w", rec.Details, err)
	}
	s.heads.seen(rec)
	return nil
}

// Issuer is the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// Handler is the HTTP handler with all endpoints and middleware, for tests
// (httptest.NewServer) and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Keys is the key manager, for operator commands.
func (s *Server) Keys() *keys.Manager { return s.keys }

// Registry is the registry watcher; its Refresh applies a change made in
// the store at once, without waiting for the next poll.
func (s *Server) Registry() *registry.Watcher { return s.registry }

// Store is the store the server uses.
func (s *Server) Store() store.Store { return s.store }

// Listeners are the sockets a server answers on. tillit serve opens them
// before New, so that a busy port is found before anything is written.
type Listeners struct {
	// Main serves every endpoint: HTTPS when tls is configured.
	Main net.Listener
	// Metrics serves /metrics over plain HTTP when metrics.listen is set;
	// when it is nil, ServeListeners opens metrics.listen itself.
	Metrics net.Listener
}

// Serve answers on ln until ctx is done; see ServeListeners.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeListeners(ctx, Listeners{Main: ln})
}

// ServeListeners answers on the listeners until ctx is done, running the
// background jobs, then stops accepting connections and lets requests in
// flight finish within the shutdown timeout. It closes the listeners.
func (s *Server) ServeListeners(ctx context.Context, l Listeners) error {
	if l.Metrics == nil && s.cfg.Metrics.Listen != "" {
		var err error
		if l.Metrics, err = net.Listen("tcp", s.cfg.Metrics.Listen); err != nil {
			l.Main.Close()
			return fmt.Errorf("server: metrics.listen: %w", err)
		}
	}
	main := s.httpServer(s.handler)
	servers := []*http.Server{main}
	serve := []func() error{func() error { return main.Serve(l.Main) }}
	if s.certs != nil {
		main.TLSConfig = s.certs.tlsConfig()
		// ServeTLS adds HTTP/2 to the protocols; the certificate comes
		// from GetCertificate.
		serve[0] = func() error { return main.ServeTLS(l.Main, "", "") }
	}
	if l.Metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		m := s.httpServer(mux)
		servers = append(servers, m)
		serve = append(serve, func() error { return m.Serve(l.Metrics) })
	}

	jobs, stopJobs := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.runJobs(jobs, &wg)

	errc := make(chan error, len(servers))
	for _, f := range serve {
		go func() { errc <- f() }()
	}
	var err error
	received := 0
	select {
	case err = <-errc:
		// One listener failed: stop the others too.
		received = 1
		s.log.Error("a listener failed; shutting down", "err", err)
	case <-ctx.Done():
		s.log.Info("shutting down", "timeout", s.cfg.HTTP.ShutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownTimeout)
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); err == nil {
			err = serr
		}
	}
	cancel()
	for range len(servers) - received {
		<-errc
	}
	stopJobs()
	wg.Wait()
	// What was counted since the last aggregate is written now rather
	// than lost with the process.
	if ferr := s.writeRefusals(context.Background(), true); ferr != nil {
		s.log.Error("refusals aggregate failed", "err", ferr)
	}
	// The last head, once no request is in flight: what verify --head
	// checks a later copy of the database against.
	if herr := s.heads.fromStore(context.Background(), s.store); herr != nil {
		s.log.Error("audit head logging failed", "err", herr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// httpServer is an http.Server with the configured limits.
func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.HTTP.ReadTimeout,
		WriteTimeout:      s.cfg.HTTP.WriteTimeout,
		IdleTimeout:       s.cfg.HTTP.IdleTimeout,
		// A DPoP proof with an RSA-4096 key is under 2 KiB; 32 KiB of
		// headers is plenty and bounds what a client can make us parse.
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// runJobs starts the background jobs. Each logs its failures and tries
// again at its next tick: a store that is briefly unreachable must not stop
// key rotation for good.
func (s *Server) runJobs(ctx context.Context, wg *sync.WaitGroup) {
	every := func(d time.Duration, name string, job func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := job(ctx); err != nil && ctx.Err() == nil {
						s.log.Error(name+" failed", "err", err)
					}
				}
			}
		}()
	}
	every(s.leaseTTL/3, "instance lease renewal", s.renewLease)
	every(s.keysEvery, "key maintenance", s.keys.Maintain)
	// Between maintenance ticks, keys another process added (keys rotate
	// --now) are picked up as quickly as registry changes are.
	every(s.cfg.RegistryPoll, "key reload", s.keys.Reload)
	every(replayCleanupInterval, "replay clean-up", func(ctx context.Context) error {
		_, err := s.store.DeleteExpiredJTIs(ctx, s.now())
		return err
	})
	every(s.cfg.Audit.HeadLogInterval, "audit head logging", func(ctx context.Context) error {
		return s.heads.fromStore(ctx, s.store)
	})
	if s.cfg.Audit.Retention > 0 {
		every(auditPruneInterval, "audit retention", func(ctx context.Context) error {
			_, err := s.PruneAudit(ctx)
			return err
		})
	}
	every(loginStateCleanupInterval, "login state clean-up", s.sweepLoginState)
	every(refusalsInterval, "refusals aggregate", s.WriteRefusals)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.registry.Run(ctx)
	}()
}

// sweepLoginState removes expired pushed requests, authorization codes,
// sessions and upstream logins.
func (s *Server) sweepLoginState(ctx context.Context) error {
	n, err := s.store.DeleteExpiredLoginState(ctx, s.now())
	if n > 0 {
		s.log.Debug("expired login state removed", "records", n)
	}
	return err
}

// Close gives up the server's instance name and releases the store if the
// server opened it.
func (s *Server) Close() error {
	if s.store != nil {
		s.releaseLease()
	}
	if s.ownStore && s.store != nil {
		return s.store.Close()
	}
	return nil
}
