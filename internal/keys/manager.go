package keys

import (
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
	"sort"
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

	mu    sync.Mutex // serialises Maintain and Rotate
	state atomic.Pointer[state]
}

type state struct {
	signing []*entry // by Generation
	nonce   []store.Key
}

type entry struct {
	rec    store.Key
	public jose.JSONWebKey
	signer *Signer
}

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
	m := &Manager{store: s, sealer: sealer, cfg: c, now: now, log: log}
	if err := m.Maintain(ctx); err != nil {
		return nil, err
	}
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

// Signer returns the key that signs now.
func (m *Manager) Signer() (*Signer, error) {
	now := m.now()
	st := m.state.Load()
	for i := len(st.signing) - 1; i >= 0; i-- {
		if statusAt(st.signing, i, now, m.cfg) == StatusActive {
			return st.signing[i].signer, nil
		}
	}
	return nil, errors.New("keys: no active signing key")
}

// Nonces returns the DPoP nonce source. Its keys follow the store.
func (m *Manager) Nonces() *dpop.Nonces { return m.nonces }

// JWKS returns the published keys (next, active and retired) as a JWK Set.
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
	for i := len(st.signing) - 1; i >= 0; i-- {
		if want(statusAt(st.signing, i, now, m.cfg)) {
			set.Keys = append(set.Keys, st.signing[i].public)
		}
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
}

// List describes the signing keys, oldest first.
func (m *Manager) List() []KeyInfo {
	return list(m.state.Load().signing, m.now(), m.cfg)
}

// ListStored describes the signing keys in s, oldest first, from their
// public records alone: it needs no key-encryption key, as nothing secret
// is opened. now may be nil for time.Now.
func ListStored(ctx context.Context, s Store, cfg Config, now func() time.Time) ([]KeyInfo, error) {
	if now == nil {
		now = time.Now
	}
	recs, err := s.Keys(ctx, store.PurposeSigning)
	if err != nil {
		return nil, fmt.Errorf("keys: load signing keys: %w", err)
	}
	entries := make([]*entry, len(recs))
	for i := range recs {
		entries[i] = &entry{rec: recs[i]}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rec.Generation < entries[j].rec.Generation })
	return list(entries, now(), cfg.withDefaults()), nil
}

func list(keys []*entry, now time.Time, c Config) []KeyInfo {
	out := make([]KeyInfo, 0, len(keys))
	for i, e := range keys {
		out = append(out, KeyInfo{
			ID: e.rec.ID, Algorithm: e.rec.Algorithm, Generation: e.rec.Generation,
			Status: statusAt(keys, i, now, c), CreatedAt: e.rec.CreatedAt, ActiveFrom: e.rec.ActiveFrom,
			NeverSigned: neverSigned(keys, i),
		})
	}
	return out
}

// neverSigned says whether a later key took over before keys[i]'s
// ActiveFrom, as statusAt decides it.
func neverSigned(keys []*entry, i int) bool {
	for _, k := range keys[i+1:] {
		if k.rec.ActiveFrom.Before(keys[i].rec.ActiveFrom) {
			return true
		}
	}
	return false
}

// statusAt derives the state of keys[i] at now. A key signs from its
// ActiveFrom until the first ActiveFrom of any key of a higher generation
// (so a manual rotation with --now wins over a successor still waiting to be
// published), then stays published until every token it signed has expired.
func statusAt(keys []*entry, i int, now time.Time, c Config) Status {
	from := keys[i].rec.ActiveFrom
	var superseded time.Time
	for _, k := range keys[i+1:] {
		if superseded.IsZero() || k.rec.ActiveFrom.Before(superseded) {
			superseded = k.rec.ActiveFrom
		}
	}
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
// empty store, starts a rotation when one is due and deletes keys past
// retention. Servers call it at start and then every minute; every instance
// may do so at once: CreateKey's unique generation makes one of them win.
func (m *Manager) Maintain(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reload(ctx); err != nil {
		return err
	}
	now := m.now()
	st := m.state.Load()
	var create *store.Key
	if len(st.signing) == 0 {
		create = &store.Key{Generation: 1, ActiveFrom: now}
	} else {
		newest := st.signing[len(st.signing)-1]
		if statusAt(st.signing, len(st.signing)-1, now, m.cfg) == StatusActive {
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
		if _, err := m.createSigning(ctx, *create, now); err != nil {
			return err
		}
	}
	if err := m.maintainNonceKeys(ctx, now); err != nil {
		return err
	}
	for i, e := range m.state.Load().signing {
		if statusAt(m.state.Load().signing, i, now, m.cfg) == statusGone {
			if err := m.store.DeleteKey(ctx, e.rec.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("keys: delete retired key: %w", err)
			}
			m.log.Info("signing key deleted after retention", "kid", e.rec.ID)
		}
	}
	return m.reload(ctx)
}

// Reload reads the keys from the store, and nothing else: what another
// process added (a rotation, `tillit keys rotate --now`) or removed takes
// effect here. Servers call it every registry_poll, between the minutes of
// Maintain, so that a key that signs at once signs everywhere within
// seconds. Keys already known are not opened again, so it costs two reads.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reload(ctx)
}

// Rotate publishes a new signing key now. It signs after the publication
// lead, or at once with immediate (then APIs that cached the JWKS may refuse
// its tokens until they fetch it again).
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
	rec, err := m.createSigning(ctx, k, now)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := m.reload(ctx); err != nil {
		return KeyInfo{}, err
	}
	m.log.Info("signing key rotated", "kid", rec.ID, "signs_from", rec.ActiveFrom, "immediate", immediate)
	return KeyInfo{ID: rec.ID, Algorithm: rec.Algorithm, Generation: rec.Generation, CreatedAt: rec.CreatedAt, ActiveFrom: rec.ActiveFrom, Status: StatusNext}, nil
}

func (m *Manager) createSigning(ctx context.Context, k store.Key, now time.Time) (store.Key, error) {
	priv, err := generate(m.cfg.Algorithm)
	if err != nil {
		return store.Key{}, err
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(m.cfg.Algorithm), Use: "sig"}
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
	k.ID, k.Purpose, k.Algorithm, k.Public, k.CreatedAt = kid, store.PurposeSigning, string(m.cfg.Algorithm), pubJSON, now
	if k.Sealed, err = m.sealer.Seal(der, aad(k)); err != nil {
		return store.Key{}, fmt.Errorf("keys: seal: %w", err)
	}
	if err := m.store.CreateKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			// Another instance created this generation first: use theirs.
			return k, nil
		}
		return store.Key{}, fmt.Errorf("keys: create signing key: %w", err)
	}
	m.log.Info("signing key created", "kid", k.ID, "alg", k.Algorithm, "generation", k.Generation, "signs_from", k.ActiveFrom)
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
	nonce, err := m.store.Keys(ctx, store.PurposeDPoPNonce)
	if err != nil {
		return fmt.Errorf("keys: load nonce keys: %w", err)
	}
	known := map[string]*entry{}
	if old := m.state.Load(); old != nil {
		for _, e := range old.signing {
			known[e.rec.ID] = e
		}
	}
	st := &state{nonce: nonce}
	for _, rec := range signing {
		if e, ok := known[rec.ID]; ok {
			st.signing = append(st.signing, e)
			continue
		}
		e, err := m.open(rec)
		if err != nil {
			return err
		}
		st.signing = append(st.signing, e)
	}
	sort.Slice(st.signing, func(i, j int) bool { return st.signing[i].rec.Generation < st.signing[j].rec.Generation })
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

func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.PS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
}
