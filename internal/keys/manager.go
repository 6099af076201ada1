package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/store"
)

// Store is what the manager needs from the store.
type Store interface {
	CreateKey(ctx context.Context, k store.Key) error
	Keys(ctx context.Context, purpose store.KeyPurpose) ([]store.Key, error)
	DeleteKey(ctx context.Context, id string) error
}

// Config sets the key life cycle. Zero fields take the defaults below.
type Config struct {
	// Algorithm signs access tokens: RS256 (default), PS256 or ES256.
	Algorithm jose.SignatureAlgorithm
	// IDTokenAlgorithms returns the algorithms clients have asked their ID
	// tokens to be signed with (idtoken.Algorithms); RS256, the default,
	// is always kept and need not be listed. Maintain calls it, so that an
	// algorithm a registry change asks for gets a key within a
	// maintenance tick. Nil means the caller does not know the registry
	// (a command line tool): then every ID-token key chain in the store is
	// kept rotating and none is retired.
	IDTokenAlgorithms func() []jose.SignatureAlgorithm
	// PublishLead is how long a new key is in the JWKS before it signs, so
	// that every API has fetched it before it meets a token signed with it.
	PublishLead time.Duration
	// RotationPeriod is how long a key signs before its successor takes over.
	RotationPeriod time.Duration
	// TokenLifetime is the longest access token lifetime: a superseded key
	// stays in the JWKS this long (plus RetireMargin) so that every token it
	// signed can still be verified.
	TokenLifetime time.Duration
	// ExpiredRetention is how long a retired key stays in expired_jwks
	// before it is deleted.
	ExpiredRetention time.Duration
	// NonceRotation is how often the DPoP nonce key is replaced.
	NonceRotation time.Duration
	// NonceSlot is the time slot of DPoP nonces (dpop.NewNonces).
	NonceSlot time.Duration
}

// Defaults: a key is published a day before it signs, signs for 90 days,
// stays published while tokens it signed may live and then sits in
// expired_jwks for 90 days; access tokens live an hour, as HelseID's do;
// the DPoP nonce key is replaced daily.
const (
	DefaultPublishLead      = 24 * time.Hour
	DefaultRotationPeriod   = 90 * 24 * time.Hour
	DefaultTokenLifetime    = time.Hour
	DefaultExpiredRetention = 90 * 24 * time.Hour
	DefaultNonceRotation    = 24 * time.Hour
	// RetireMargin covers clock skew between the token service and APIs.
	RetireMargin = 5 * time.Minute
	// freshWindow is how long after a new store's first key an instance
	// starting at the same time still counts the store as new (Maintain).
	freshWindow = time.Minute
	// nonceLead gives other instances time to load a new nonce key before
	// it issues nonces; they reload at every maintenance tick.
	nonceLead = 5 * time.Minute
)

func (c *Config) withDefaults() Config {
	out := *c
	if out.Algorithm == "" {
		out.Algorithm = jose.RS256
	}
	if out.PublishLead == 0 {
		out.PublishLead = DefaultPublishLead
	}
	if out.RotationPeriod == 0 {
		out.RotationPeriod = DefaultRotationPeriod
	}
	if out.TokenLifetime == 0 {
		out.TokenLifetime = DefaultTokenLifetime
	}
	if out.ExpiredRetention == 0 {
		out.ExpiredRetention = DefaultExpiredRetention
	}
	if out.NonceRotation == 0 {
		out.NonceRotation = DefaultNonceRotation
	}
	return out
}

// Status is where a signing key is in its life.
type Status string

const (
	StatusNext    Status = "next"    // published, not yet signing
	StatusActive  Status = "active"  // signing
	StatusRetired Status = "retired" // published until the tokens it signed expire
	StatusExpired Status = "expired" // only in expired_jwks
	statusGone    Status = "gone"    // past retention: deleted
)

// Manager keeps the signing and nonce keys, rotates them and serves the JWKS.
// Every instance derives the same key states from the same store records and
// its clock, so instances agree without talking to each other.
//
// There are two kinds of signing key chain. The access-token chain
// (store.PurposeSigning) is one sequence of keys in the configured
// algorithm, whatever algorithm it had before; its active key also signs
// the ID tokens of its own algorithm. The ID-token chains
// (store.PurposeIDSigning), one per algorithm, exist for the ID-token
// algorithms the access-token key does not cover: RS256 when access tokens
// are ES256 or PS256, and whatever a client asks for. Every chain has the
// same life cycle: a key is published PublishLead before it signs, signs
// for RotationPeriod, stays published while what it signed may live, then
// sits in expired_jwks.
type Manager struct {
	store  Store
	sealer *Sealer
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	nonces *dpop.Nonces
	// pseudonym is the deployment's pseudonym key, read once: it never
	// changes.
	pseudonym []byte

	// starting is set during NewManager's first Maintain, before the
	// manager is shared.
	starting bool

	mu    sync.Mutex // serialises Maintain and Rotate
	state atomic.Pointer[state]
	// idAlgs are the ID-token algorithms Maintain last derived, RS256
	// first.
	idAlgs atomic.Pointer[[]jose.SignatureAlgorithm]
}

type state struct {
	signing []*entry  // the access-token chain, by Generation
	id      []idChain // the ID-token chains, by algorithm name
	nonce   []store.Key
}

// idChain is the ID-token keys of one algorithm, by Generation. Its last
// entry may be a retirement marker.
type idChain struct {
	alg  jose.SignatureAlgorithm
	keys []*entry
}

type entry struct {
	rec    store.Key
	public jose.JSONWebKey
	// signer is nil for a retirement marker: a record that ends an
	// ID-token chain whose algorithm nobody needs any more. It supersedes
	// the keys before it like a successor would, and holds no key.
	signer *Signer
	// superseded is the earliest ActiveFrom of the later keys of the same
	// chain: when this key stops signing (a manual rotation with --now
	// wins over a successor still waiting to be published). Zero while
	// there is none. It depends on the records alone, so reload computes
	// it once and the signer lookups compare two times per key.
	superseded time.Time
}

// marker reports whether e is a retirement marker.
func (e *entry) marker() bool { return e.signer == nil && len(e.rec.Public) == 0 }

// NewManager loads the keys, creates the first ones on a new store and
// returns a Manager ready to sign. now may be nil for time.Now.
func NewManager(ctx context.Context, s Store, sealer *Sealer, cfg Config, now func() time.Time, log *slog.Logger) (*Manager, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := cfg.withDefaults()
	switch c.Algorithm {
	case jose.RS256, jose.PS256, jose.ES256:
	default:
		return nil, fmt.Errorf("keys: signing algorithm %q is not supported (RS256, PS256, ES256)", c.Algorithm)
	}
	m := &Manager{store: s, sealer: sealer, cfg: c, now: now, log: log, starting: true}
	if err := m.Maintain(ctx); err != nil {
		return nil, err
	}
	m.starting = false
	var err error
	if m.pseudonym, err = m.pseudonymKey(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// PseudonymKey is the key of identity.Pseudonym: the person's sub is
// base64(HMAC-SHA256(key, pid)). There is one per deployment, made on the
// first start and shared by every instance through the store, so a person
// has one sub at every instance and for every client.
func (m *Manager) PseudonymKey() []byte { return m.pseudonym }

// pseudonymSize is the pseudonym key's size: the HMAC-SHA256 output size.
const pseudonymSize = 32

// pseudonymKey reads the pseudonym key, creating it on a new store.
// Instances starting at once on one new store race to create generation 1;
// the store lets one win and every instance then reads the winner's, so
// no instance ever uses a key it made but did not store.
func (m *Manager) pseudonymKey(ctx context.Context) ([]byte, error) {
	recs, err := m.store.Keys(ctx, store.PurposePseudonym)
	if err != nil {
		return nil, fmt.Errorf("keys: load the pseudonym key: %w", err)
	}
	if len(recs) == 0 {
		secret := make([]byte, pseudonymSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		now := m.now()
		k := store.Key{ID: "pseudonym-1", Purpose: store.PurposePseudonym, Generation: 1, Algorithm: "HS256", CreatedAt: now, ActiveFrom: now}
		if k.Sealed, err = m.sealer.Seal(secret, aad(k)); err != nil {
			return nil, fmt.Errorf("keys: seal: %w", err)
		}
		switch err := m.store.CreateKey(ctx, k); {
		case err == nil:
			m.log.Info("pseudonym key created")
		case !errors.Is(err, store.ErrAlreadyExists):
			return nil, fmt.Errorf("keys: create the pseudonym key: %w", err)
		}
		if recs, err = m.store.Keys(ctx, store.PurposePseudonym); err != nil {
			return nil, fmt.Errorf("keys: load the pseudonym key: %w", err)
		}
	}
	if len(recs) == 0 {
		return nil, errors.New("keys: the pseudonym key was created but cannot be read")
	}
	// Generation 1 is the key: it is never rotated, and a later generation
	// (which nothing makes) would not be used.
	secret, err := m.sealer.Open(recs[0].Sealed, aad(recs[0]))
	if err != nil {
		return nil, fmt.Errorf("keys: pseudonym key %s: %w", recs[0].ID, err)
	}
	if len(secret) != pseudonymSize {
		return nil, fmt.Errorf("keys: pseudonym key %s has %d bytes, want %d", recs[0].ID, len(secret), pseudonymSize)
	}
	return secret, nil
}

// Signer returns the key that signs access tokens now.
func (m *Manager) Signer() (*Signer, error) {
	if e := active(m.state.Load().signing, m.now(), m.cfg); e != nil {
		return e.signer, nil
	}
	return nil, errors.New("keys: no active signing key")
}

// defaultIDAlgorithm signs the ID tokens of a client that asked for no
// algorithm: RS256, which OpenID Connect Core §15.1 requires of every
// provider and which HelseID's ID tokens use (idtoken.DefaultAlgorithm).
const defaultIDAlgorithm = jose.RS256

// IDKeyError is IDTokenSigner's answer when no key signs ID tokens in
// Algorithm now: the algorithm is new here, and its first key is published
// before it signs. From is when that key signs; zero when none is
// published yet (the next maintenance publishes one if a client wants the
// algorithm).
type IDKeyError struct {
	Algorithm jose.SignatureAlgorithm
	From      time.Time
}

func (e *IDKeyError) Error() string {
	if e.From.IsZero() {
		return fmt.Sprintf("keys: no key signs ID tokens with %s yet", e.Algorithm)
	}
	return fmt.Sprintf("keys: the first key for ID tokens with %s is published and signs from %s", e.Algorithm, e.From.UTC().Format(time.RFC3339))
}

// IDTokenSigner returns the key that signs ID tokens with alg now: the
// access-token key when it has that algorithm, else the active key of
// alg's ID-token chain; an *IDKeyError when there is none yet.
//
// An empty alg is a client that asked for nothing: RS256. While no RS256
// key signs yet, the access-token key signs its ID tokens, as every ID
// token was signed before keys were kept per algorithm. That happens only
// in the publication lead of the first RS256 key of a deployment whose
// access tokens have another algorithm (on its first start with this
// version, or after its access-token algorithm changed), and such a
// client has so far had the access-token key's ID tokens. A client that
// asked for an algorithm is never given another one: a client that
// checks alg would refuse the token.
func (m *Manager) IDTokenSigner(alg jose.SignatureAlgorithm) (*Signer, error) {
	now := m.now()
	st := m.state.Load()
	access := active(st.signing, now, m.cfg)
	want := alg
	if want == "" {
		want = defaultIDAlgorithm
	}
	if access != nil && access.signer.alg == want {
		return access.signer, nil
	}
	ke := &IDKeyError{Algorithm: want}
	if ch := st.chain(want); ch != nil {
		if e := active(ch.keys, now, m.cfg); e != nil {
			return e.signer, nil
		}
		for _, e := range ch.keys {
			if !e.marker() && status(e, now, m.cfg) == StatusNext && (ke.From.IsZero() || e.rec.ActiveFrom.Before(ke.From)) {
				ke.From = e.rec.ActiveFrom
			}
		}
	}
	if alg == "" && access != nil {
		return access.signer, nil
	}
	return nil, ke
}

// IDTokenAlgorithms are the algorithms ID tokens are signed with now, the
// default first: of the ones wanted (RS256 and those clients ask for,
// as Maintain last read them), those a key signs, and the access-token
// key's while it stands in for RS256 (IDTokenSigner).
func (m *Manager) IDTokenAlgorithms() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	wanted := []jose.SignatureAlgorithm{defaultIDAlgorithm}
	if p := m.idAlgs.Load(); p != nil {
		wanted = *p
	}
	for _, alg := range wanted {
		ask := alg
		if alg == defaultIDAlgorithm {
			ask = ""
		}
		s, err := m.IDTokenSigner(ask)
		if err == nil && !slices.Contains(out, s.alg) {
			out = append(out, s.alg)
		}
	}
	return out
}

// active is the key of chain that signs at now, nil when none does.
func active(chain []*entry, now time.Time, c Config) *entry {
	for i := len(chain) - 1; i >= 0; i-- {
		if e := chain[i]; e.signer != nil && status(e, now, c) == StatusActive {
			return e
		}
	}
	return nil
}

// chain is the ID-token chain of alg, nil when there is none.
func (st *state) chain(alg jose.SignatureAlgorithm) *idChain {
	for i := range st.id {
		if st.id[i].alg == alg {
			return &st.id[i]
		}
	}
	return nil
}

// nextIDGeneration is the generation of the next ID-token key record:
// unique among the ID-token keys of every algorithm, as the store wants.
func (st *state) nextIDGeneration() int64 {
	var n int64
	for _, ch := range st.id {
		if g := ch.keys[len(ch.keys)-1].rec.Generation; g > n {
			n = g
		}
	}
	return n + 1
}

// Nonces returns the DPoP nonce source. Its keys follow the store.
func (m *Manager) Nonces() *dpop.Nonces { return m.nonces }

// JWKS returns the published keys (next, active and retired) of every
// algorithm as a JWK Set.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	return m.set(func(s Status) bool { return s == StatusNext || s == StatusActive || s == StatusRetired })
}

// ExpiredJWKS returns the retired keys that no longer verify live tokens.
func (m *Manager) ExpiredJWKS() jose.JSONWebKeySet {
	return m.set(func(s Status) bool { return s == StatusExpired })
}

func (m *Manager) set(want func(Status) bool) jose.JSONWebKeySet {
	now := m.now()
	st := m.state.Load()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	// Newest first: clients that take the first key find the signer sooner.
	add := func(chain []*entry) {
		for i := len(chain) - 1; i >= 0; i-- {
			if e := chain[i]; !e.marker() && want(status(e, now, m.cfg)) {
				set.Keys = append(set.Keys, e.public)
			}
		}
	}
	add(st.signing)
	for _, ch := range st.id {
		add(ch.keys)
	}
	return set
}

// KeyInfo describes a signing key for operators.
type KeyInfo struct {
	ID         string
	Algorithm  string
	Generation int64
	Status     Status
	CreatedAt  time.Time
	ActiveFrom time.Time
	// NeverSigned is set for a key that a later one replaced before its
	// ActiveFrom (a rotation with --now while it waited to be
	// published): it signed nothing, so it goes straight to expired.
	NeverSigned bool
	// IDOnly is set for a key of an ID-token chain: it signs ID tokens of
	// an algorithm the access tokens do not use, and no access tokens.
	IDOnly bool
}

// List describes the signing keys: the access-token keys oldest first,
// then each ID-token algorithm's keys oldest first.
func (m *Manager) List() []KeyInfo {
	st := m.state.Load()
	return list(st.signing, st.id, m.now(), m.cfg)
}

// ListStored describes the signing keys in s as List does, from their
// public records alone: it needs no key-encryption key, as nothing secret
// is opened. now may be nil for time.Now.
func ListStored(ctx context.Context, s Store, cfg Config, now func() time.Time) ([]KeyInfo, error) {
	if now == nil {
		now = time.Now
	}
	signing, err := s.Keys(ctx, store.PurposeSigning)
	if err != nil {
		return nil, fmt.Errorf("keys: load signing keys: %w", err)
	}
	id, err := s.Keys(ctx, store.PurposeIDSigning)
	if err != nil {
		return nil, fmt.Errorf("keys: load ID-token signing keys: %w", err)
	}
	access, chains, err := chainUp(signing, id, func(rec store.Key) (*entry, error) { return &entry{rec: rec}, nil })
	if err != nil {
		return nil, err
	}
	return list(access, chains, now(), cfg.withDefaults()), nil
}

func list(access []*entry, id []idChain, now time.Time, c Config) []KeyInfo {
	var out []KeyInfo
	add := func(keys []*entry, idOnly bool) {
		for _, e := range keys {
			if e.marker() {
				continue
			}
			out = append(out, KeyInfo{
				ID: e.rec.ID, Algorithm: e.rec.Algorithm, Generation: e.rec.Generation,
				Status: status(e, now, c), CreatedAt: e.rec.CreatedAt, ActiveFrom: e.rec.ActiveFrom,
				NeverSigned: !e.superseded.IsZero() && e.superseded.Before(e.rec.ActiveFrom),
				IDOnly:      idOnly,
			})
		}
	}
	add(access, false)
	for _, ch := range id {
		add(ch.keys, true)
	}
	if out == nil {
		out = []KeyInfo{}
	}
	return out
}

// chainUp sorts the signing key records into the access-token chain and
// the ID-token chains, making each entry with mk, and sets when each key is
// superseded.
func chainUp(signing, id []store.Key, mk func(store.Key) (*entry, error)) ([]*entry, []idChain, error) {
	access := make([]*entry, 0, len(signing))
	for _, rec := range signing {
		e, err := mk(rec)
		if err != nil {
			return nil, nil, err
		}
		access = append(access, e)
	}
	var chains []idChain
	for _, rec := range id {
		e, err := mk(rec)
		if err != nil {
			return nil, nil, err
		}
		alg := jose.SignatureAlgorithm(rec.Algorithm)
		i := slices.IndexFunc(chains, func(c idChain) bool { return c.alg == alg })
		if i < 0 {
			chains = append(chains, idChain{alg: alg})
			i = len(chains) - 1
		}
		chains[i].keys = append(chains[i].keys, e)
	}
	byGeneration := func(a, b *entry) int { return cmp.Compare(a.rec.Generation, b.rec.Generation) }
	slices.SortFunc(access, byGeneration)
	supersede(access)
	slices.SortFunc(chains, func(a, b idChain) int { return strings.Compare(string(a.alg), string(b.alg)) })
	for _, ch := range chains {
		slices.SortFunc(ch.keys, byGeneration)
		supersede(ch.keys)
	}
	return access, chains, nil
}

// supersede sets each key's superseded: the earliest ActiveFrom of the
// keys after it in chain.
func supersede(chain []*entry) {
	var first time.Time
	for i := len(chain) - 1; i >= 0; i-- {
		chain[i].superseded = first
		if from := chain[i].rec.ActiveFrom; first.IsZero() || from.Before(first) {
			first = from
		}
	}
}

// status derives the state of e at now. A key signs from its ActiveFrom
// until it is superseded, then stays published until every token it
// signed has expired.
func status(e *entry, now time.Time, c Config) Status {
	from, superseded := e.rec.ActiveFrom, e.superseded
	if superseded.IsZero() || now.Before(superseded) {
		if now.Before(from) {
			return StatusNext
		}
		return StatusActive
	}
	retire := superseded
	// A key that was active at any instant, even the very one it was
	// superseded at, may have signed tokens: keep it until they expire. Only
	// a key preempted before its ActiveFrom never signed anything.
	if !from.After(superseded) {
		retire = superseded.Add(c.TokenLifetime + RetireMargin)
	}
	switch {
	case now.Before(retire):
		return StatusRetired
	case now.Before(retire.Add(c.ExpiredRetention)):
		return StatusExpired
	}
	return statusGone
}

// Maintain reloads the keys from the store, creates the first keys on an
// empty store, starts a rotation when one is due, gives every ID-token
// algorithm that is wanted a key and retires those no longer wanted, and
// deletes keys past retention. Servers call it at start and then every
// minute; every instance may do so at once: CreateKey's unique generation
// makes one of them win.
func (m *Manager) Maintain(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reload(ctx); err != nil {
		return err
	}
	now := m.now()
	st := m.state.Load()
	// A new deployment: its first keys sign at once, as nobody can have
	// cached its JWKS or hold a token it signed. At this instance's start
	// that includes a store whose only key is the first access-token key,
	// made moments ago by an instance starting at the same time: that
	// instance makes its ID-token keys before it serves anything, and this
	// one's may win the race to store them, so they must not wait out the
	// lead either.
	fresh := len(st.id) == 0 && (len(st.signing) == 0 || m.starting &&
		len(st.signing) == 1 && st.signing[0].rec.Generation == 1 && now.Sub(st.signing[0].rec.CreatedAt) < freshWindow)
	var create *store.Key
	if len(st.signing) == 0 {
		create = &store.Key{Generation: 1, ActiveFrom: now}
	} else {
		newest := st.signing[len(st.signing)-1]
		if status(newest, now, m.cfg) == StatusActive {
			due := newest.rec.ActiveFrom.Add(m.cfg.RotationPeriod)
			switch {
			case !now.Before(due.Add(-m.cfg.PublishLead)):
				from := due
				if from.Before(now.Add(m.cfg.PublishLead)) {
					from = now.Add(m.cfg.PublishLead)
				}
				create = &store.Key{Generation: newest.rec.Generation + 1, ActiveFrom: from}
				m.log.Info("signing key rotation due", "kid", newest.rec.ID, "successor_signs_from", from)
			case newest.rec.Algorithm != string(m.cfg.Algorithm):
				create = &store.Key{Generation: newest.rec.Generation + 1, ActiveFrom: now.Add(m.cfg.PublishLead)}
				m.log.Info("signing algorithm changed: new key published", "from", newest.rec.Algorithm, "to", m.cfg.Algorithm)
			}
		}
	}
	if create != nil {
		if _, err := m.createSigning(ctx, *create, now, store.PurposeSigning, m.cfg.Algorithm); err != nil {
			return err
		}
		if err := m.reload(ctx); err != nil {
			return err
		}
	}
	if err := m.maintainIDKeys(ctx, now, fresh); err != nil {
		return err
	}
	if err := m.maintainNonceKeys(ctx, now); err != nil {
		return err
	}
	st = m.state.Load()
	var gone []*entry
	for _, e := range st.signing {
		if status(e, now, m.cfg) == statusGone {
			gone = append(gone, e)
		}
	}
	for _, ch := range st.id {
		for i, e := range ch.keys {
			// A marker goes once the keys it retired are gone: deleted
			// earlier, while one of them remains, it would let that key
			// sign again.
			if (e.marker() && i == 0) || (!e.marker() && status(e, now, m.cfg) == statusGone) {
				gone = append(gone, e)
			}
		}
	}
	for _, e := range gone {
		if err := m.store.DeleteKey(ctx, e.rec.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("keys: delete retired key: %w", err)
		}
		m.log.Info("signing key deleted after retention", "kid", e.rec.ID)
	}
	return m.reload(ctx)
}

// wantedIDAlgorithms are the ID-token algorithms the configuration asks
// for, RS256 first and the rest by name; known is false when the
// configuration does not say (Config.IDTokenAlgorithms is nil).
func (m *Manager) wantedIDAlgorithms() (algs []jose.SignatureAlgorithm, known bool) {
	algs = []jose.SignatureAlgorithm{defaultIDAlgorithm}
	if m.cfg.IDTokenAlgorithms == nil {
		m.idAlgs.Store(&algs)
		return algs, false
	}
	var more []jose.SignatureAlgorithm
	for _, a := range m.cfg.IDTokenAlgorithms() {
		// An algorithm Tillit cannot sign with is a broken registry
		// record; the registry refuses that client.
		if slices.Contains(jws.Algorithms, a) && !slices.Contains(algs, a) && !slices.Contains(more, a) {
			more = append(more, a)
		}
	}
	slices.Sort(more)
	algs = append(algs, more...)
	m.idAlgs.Store(&algs)
	return algs, true
}

// maintainIDKeys keeps one ID-token chain for each wanted algorithm that
// the access-token key does not cover, and retires the chains of the
// others.
//
// The first key of a new algorithm is published PublishLead before it
// signs, like every successor, although only clients verify ID tokens and
// they fetch the JWKS when they meet an unknown kid. Not every client
// does: many cache the JWKS for hours and refetch on a miss at most every
// few minutes, and a client refuses a token it cannot verify, which fails
// the person's login. So a client that asks for a new algorithm gets its
// ID tokens once the key has been published for the lead (before that the
// token endpoint answers temporarily_unavailable and says when), and no
// client ever meets a key it could not have fetched. Only a new
// deployment, with nothing cached anywhere, signs with its first keys at
// once.
func (m *Manager) maintainIDKeys(ctx context.Context, now time.Time, fresh bool) error {
	wanted, known := m.wantedIDAlgorithms()
	st := m.state.Load()
	access := active(st.signing, now, m.cfg)
	// The access-token key signs this algorithm's ID tokens now and will
	// go on doing so: no chain of its own is needed.
	covered := func(alg jose.SignatureAlgorithm) bool {
		return alg == m.cfg.Algorithm && access != nil && access.signer.alg == alg
	}
	algs := slices.Clone(wanted)
	for _, ch := range st.id {
		if !slices.Contains(algs, ch.alg) {
			algs = append(algs, ch.alg)
		}
	}
	gen := st.nextIDGeneration()
	changed := false
	for _, alg := range algs {
		var newest *entry
		if ch := st.chain(alg); ch != nil {
			newest = ch.keys[len(ch.keys)-1]
		}
		live := newest != nil && !newest.marker()
		// A tool that does not know what clients want keeps every chain.
		need := !covered(alg) && (slices.Contains(wanted, alg) || (!known && live))
		var k *store.Key
		switch {
		case need && !live:
			from := now.Add(m.cfg.PublishLead)
			if fresh {
				from = now
			}
			k = &store.Key{ActiveFrom: from}
			m.log.Info("ID-token algorithm wanted: new key published", "alg", alg, "signs_from", from)
		case live && status(newest, now, m.cfg) == StatusActive:
			due := newest.rec.ActiveFrom.Add(m.cfg.RotationPeriod)
			switch {
			case need && !now.Before(due.Add(-m.cfg.PublishLead)):
				from := due
				if from.Before(now.Add(m.cfg.PublishLead)) {
					from = now.Add(m.cfg.PublishLead)
				}
				k = &store.Key{ActiveFrom: from}
				m.log.Info("ID-token signing key rotation due", "alg", alg, "kid", newest.rec.ID, "successor_signs_from", from)
			case !need && known && !now.Before(due):
				// Nobody wants the algorithm any more: at the end of its
				// period the key is retired rather than replaced. Until
				// then a client that changes its mind back finds it.
				rec := store.Key{ID: fmt.Sprintf("retired-%s-%d", alg, gen), Purpose: store.PurposeIDSigning, Generation: gen,
					Algorithm: string(alg), CreatedAt: now, ActiveFrom: now}
				gen++
				if err := m.store.CreateKey(ctx, rec); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
					return fmt.Errorf("keys: retire the %s ID-token keys: %w", alg, err)
				}
				m.log.Info("ID-token algorithm no longer wanted: key retired", "alg", alg, "kid", newest.rec.ID)
				changed = true
			}
		}
		if k == nil {
			continue
		}
		k.Generation = gen
		gen++
		if _, err := m.createSigning(ctx, *k, now, store.PurposeIDSigning, alg); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return m.reload(ctx)
	}
	return nil
}

// Reload reads the keys from the store, and nothing else: what another
// process added (a rotation, `tillit keys rotate --now`) or removed takes
// effect here. Servers call it every registry_poll, between the minutes of
// Maintain, so that a key that signs at once signs everywhere within
// seconds. Keys already known are not opened again, so it costs three
// reads.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reload(ctx)
}

// Rotate publishes a new signing key now for access tokens and one for each
// ID-token algorithm in use. They sign after the publication lead, or at
// once with immediate (then APIs and clients that cached the JWKS may
// refuse their tokens until they fetch it again). It returns the new
// access-token key.
func (m *Manager) Rotate(ctx context.Context, immediate bool) (KeyInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reload(ctx); err != nil {
		return KeyInfo{}, err
	}
	now := m.now()
	st := m.state.Load()
	k := store.Key{Generation: 1, ActiveFrom: now.Add(m.cfg.PublishLead)}
	if n := len(st.signing); n > 0 {
		k.Generation = st.signing[n-1].rec.Generation + 1
	}
	if immediate || len(st.signing) == 0 {
		k.ActiveFrom = now
	}
	rec, err := m.createSigning(ctx, k, now, store.PurposeSigning, m.cfg.Algorithm)
	if err != nil {
		return KeyInfo{}, err
	}
	gen := st.nextIDGeneration()
	for _, ch := range st.id {
		if ch.keys[len(ch.keys)-1].marker() {
			continue
		}
		idk := store.Key{Generation: gen, ActiveFrom: k.ActiveFrom}
		gen++
		if _, err := m.createSigning(ctx, idk, now, store.PurposeIDSigning, ch.alg); err != nil {
			return KeyInfo{}, err
		}
	}
	if err := m.reload(ctx); err != nil {
		return KeyInfo{}, err
	}
	m.log.Info("signing key rotated", "kid", rec.ID, "signs_from", rec.ActiveFrom, "immediate", immediate)
	return KeyInfo{ID: rec.ID, Algorithm: rec.Algorithm, Generation: rec.Generation, CreatedAt: rec.CreatedAt, ActiveFrom: rec.ActiveFrom, Status: StatusNext}, nil
}

// newSealedKey makes a new private key for alg and fills in k's ID (the
// RFC 7638 thumbprint), Purpose, Algorithm, public JWK, CreatedAt and the
// private key sealed to the record.
func (m *Manager) newSealedKey(k store.Key, now time.Time, purpose store.KeyPurpose, alg jose.SignatureAlgorithm) (store.Key, error) {
	priv, err := generate(alg)
	if err != nil {
		return store.Key{}, err
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(alg), Use: "sig"}
	kid, err := jws.Thumbprint(&pub)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: %w", err)
	}
	pub.KeyID = kid
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: %w", err)
	}
	k.ID, k.Purpose, k.Algorithm, k.Public, k.CreatedAt = kid, purpose, string(alg), pubJSON, now
	if k.Sealed, err = m.sealer.Seal(der, aad(k)); err != nil {
		return store.Key{}, fmt.Errorf("keys: seal: %w", err)
	}
	return k, nil
}

func (m *Manager) createSigning(ctx context.Context, k store.Key, now time.Time, purpose store.KeyPurpose, alg jose.SignatureAlgorithm) (store.Key, error) {
	k, err := m.newSealedKey(k, now, purpose, alg)
	if err != nil {
		return store.Key{}, err
	}
	if err := m.store.CreateKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			// Another instance created this generation first: use theirs.
			// (Of an ID-token key, theirs may be of another algorithm;
			// the next maintenance, which sees it, makes this one.)
			return k, nil
		}
		return store.Key{}, fmt.Errorf("keys: create signing key: %w", err)
	}
	m.log.Info("signing key created", "kid", k.ID, "purpose", k.Purpose, "alg", k.Algorithm, "generation", k.Generation, "signs_from", k.ActiveFrom)
	return k, nil
}

func (m *Manager) maintainNonceKeys(ctx context.Context, now time.Time) error {
	keys := m.state.Load().nonce
	var next *store.Key
	switch {
	case len(keys) == 0:
		next = &store.Key{Generation: 1, ActiveFrom: now}
	default:
		newest := keys[len(keys)-1]
		if !now.Before(newest.ActiveFrom.Add(m.cfg.NonceRotation)) {
			next = &store.Key{Generation: newest.Generation + 1, ActiveFrom: now.Add(nonceLead)}
		}
	}
	if next != nil {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		next.ID = fmt.Sprintf("dpop-nonce-%d", next.Generation)
		next.Purpose, next.Algorithm, next.CreatedAt = store.PurposeDPoPNonce, "HS256", now
		sealed, err := m.sealer.Seal(secret, aad(*next))
		if err != nil {
			return err
		}
		next.Sealed = sealed
		if err := m.store.CreateKey(ctx, *next); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("keys: create nonce key: %w", err)
		}
		if err := m.reload(ctx); err != nil {
			return err
		}
		keys = m.state.Load().nonce
	}
	// Keys older than the one before the active one are no longer accepted.
	active := activeNonce(keys, now)
	for _, k := range keys {
		if k.Generation < keys[active].Generation-1 {
			if err := m.store.DeleteKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("keys: delete nonce key: %w", err)
			}
		}
	}
	return nil
}

func activeNonce(keys []store.Key, now time.Time) int {
	active := 0
	for i, k := range keys {
		if !now.Before(k.ActiveFrom) {
			active = i
		}
	}
	return active
}

// reload reads every key from the store and swaps in the new state. Keys
// already known are not opened again.
func (m *Manager) reload(ctx context.Context) error {
	signing, err := m.store.Keys(ctx, store.PurposeSigning)
	if err != nil {
		return fmt.Errorf("keys: load signing keys: %w", err)
	}
	id, err := m.store.Keys(ctx, store.PurposeIDSigning)
	if err != nil {
		return fmt.Errorf("keys: load ID-token signing keys: %w", err)
	}
	nonce, err := m.store.Keys(ctx, store.PurposeDPoPNonce)
	if err != nil {
		return fmt.Errorf("keys: load nonce keys: %w", err)
	}
	known := map[string]*entry{}
	if old := m.state.Load(); old != nil {
		for _, e := range old.signing {
			known[e.rec.ID] = e
		}
		for _, ch := range old.id {
			for _, e := range ch.keys {
				known[e.rec.ID] = e
			}
		}
	}
	st := &state{nonce: nonce}
	// Entries are copied, never changed: readers of the old state may be
	// looking at them.
	st.signing, st.id, err = chainUp(signing, id, func(rec store.Key) (*entry, error) {
		if e, ok := known[rec.ID]; ok {
			c := *e
			return &c, nil
		}
		return m.open(rec)
	})
	if err != nil {
		return err
	}
	sort.Slice(st.nonce, func(i, j int) bool { return st.nonce[i].Generation < st.nonce[j].Generation })
	if len(st.nonce) > 0 {
		if err := m.loadNonceKeys(st.nonce); err != nil {
			return err
		}
	}
	m.state.Store(st)
	return nil
}

func (m *Manager) loadNonceKeys(recs []store.Key) error {
	now := m.now()
	active := activeNonce(recs, now)
	// The active key issues; the previous one and any successor already
	// published by another instance are accepted.
	keys := make([]dpop.NonceKey, 0, len(recs))
	order := append([]int{active}, func() []int {
		var rest []int
		for i := range recs {
			if i != active {
				rest = append(rest, i)
			}
		}
		return rest
	}()...)
	for _, i := range order {
		secret, err := m.sealer.Open(recs[i].Sealed, aad(recs[i]))
		if err != nil {
			return fmt.Errorf("keys: nonce key %s: %w", recs[i].ID, err)
		}
		keys = append(keys, dpop.NonceKey{ID: uint32(recs[i].Generation), Secret: secret})
	}
	if m.nonces == nil {
		m.nonces = dpop.NewNonces(m.cfg.NonceSlot, keys...)
	} else {
		m.nonces.SetKeys(keys...)
	}
	return nil
}

func (m *Manager) open(rec store.Key) (*entry, error) {
	if rec.Purpose == store.PurposeIDSigning && len(rec.Public) == 0 {
		return &entry{rec: rec}, nil // a retirement marker
	}
	der, err := m.sealer.Open(rec.Sealed, aad(rec))
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: %w", rec.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: %w", rec.ID, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: signing key %s has unsupported type %T", rec.ID, parsed)
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal(rec.Public, &pub); err != nil {
		return nil, fmt.Errorf("keys: signing key %s public part: %w", rec.ID, err)
	}
	signer, err := newSigner(priv, jose.SignatureAlgorithm(rec.Algorithm), rec.ID)
	if err != nil {
		return nil, err
	}
	return &entry{rec: rec, public: pub, signer: signer}, nil
}

// aad binds a sealed blob to its record.
func aad(k store.Key) string { return string(k.Purpose) + "|" + k.ID }

// generate makes a key for alg: RSA of 2048 bits for RS* and PS* (what
// HelseID's clients and APIs expect; a longer key would slow every
// verification), EC on the curve ES* names.
func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
}
