package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/store"
)

// Upstream keys are the keys Tillit authenticates itself with at an
// upstream identity provider (private_key_jwt toward ID-porten, say). Tillit
// makes them itself and keeps them in the store sealed with the
// key-encryption key, as it keeps its signing keys, so that no private key
// lies about in a file; the operator registers the public half at the
// provider. Each provider has a purpose of its own, so that generations
// count per provider.

// UpstreamAlgorithms are the algorithms an upstream key may be made for.
var UpstreamAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// DefaultUpstreamAlgorithm is RS256: ID-porten accepts RSA client
// assertions with RS256 and publishes no ES or PS algorithm for its token
// endpoint, so the default works there; PS256 and ES256 suit providers
// that take them (HelseID, another Tillit).
const DefaultUpstreamAlgorithm = jose.RS256

// UpstreamPurpose is the store purpose of the keys for the identity
// provider named idp.
func UpstreamPurpose(idp string) store.KeyPurpose { return store.KeyPurpose("upstream:" + idp) }

// ErrNoUpstreamKey means a provider has no key yet: a server start (or
// `tillit idp rotate-key`) makes the first one.
var ErrNoUpstreamKey = errors.New("keys: no upstream key")

// UpstreamKeyStatus is where an upstream key is in its life.
type UpstreamKeyStatus string

const (
	// UpstreamNext is published (register it at the provider) but signs
	// only from its ActiveFrom.
	UpstreamNext UpstreamKeyStatus = "next"
	// UpstreamSigning signs the assertions now.
	UpstreamSigning UpstreamKeyStatus = "signing"
	// UpstreamOld was replaced; the next rotation deletes it.
	UpstreamOld UpstreamKeyStatus = "old"
)

// UpstreamKeyInfo is the public side of an upstream key.
type UpstreamKeyInfo struct {
	ID         string // the kid: the RFC 7638 thumbprint
	Algorithm  string
	Generation int64
	CreatedAt  time.Time
	ActiveFrom time.Time
	Status     UpstreamKeyStatus
	// Public is the public JWK, with kid, alg and use.
	Public jose.JSONWebKey
}

// EnsureUpstreamKey makes the first key for the provider idp when it has
// none, for alg (DefaultUpstreamAlgorithm when empty). It is idempotent
// across instances sharing a store: they race to create generation 1, the
// store lets one win, and the others keep the winner's.
func (m *Manager) EnsureUpstreamKey(ctx context.Context, idp string, alg jose.SignatureAlgorithm) error {
	recs, err := m.store.Keys(ctx, UpstreamPurpose(idp))
	if err != nil {
		return fmt.Errorf("keys: load the keys for %s: %w", idp, err)
	}
	if len(recs) > 0 {
		return nil
	}
	now := m.now()
	k, err := m.newUpstreamKey(idp, alg, 1, now, now)
	if err != nil {
		return err
	}
	switch err := m.store.CreateKey(ctx, k); {
	case err == nil:
		m.log.Info("upstream key created", "idp", idp, "kid", k.ID, "alg", k.Algorithm)
	case errors.Is(err, store.ErrAlreadyExists):
		// Another instance made it first: theirs is the key.
	default:
		return fmt.Errorf("keys: create the key for %s: %w", idp, err)
	}
	return nil
}

// RotateUpstreamKey makes a new key for the provider idp, published at
// once and signing from now+after, so that the operator can register it
// at the provider before it is used. Keys older than the one signing now
// are deleted: they sign nothing any more. A provider without keys gets
// its first one, signing at once.
func (m *Manager) RotateUpstreamKey(ctx context.Context, idp string, alg jose.SignatureAlgorithm, after time.Duration) (UpstreamKeyInfo, error) {
	purpose := UpstreamPurpose(idp)
	recs, err := m.store.Keys(ctx, purpose)
	if err != nil {
		return UpstreamKeyInfo{}, fmt.Errorf("keys: load the keys for %s: %w", idp, err)
	}
	now := m.now()
	gen, from := int64(1), now
	if n := len(recs); n > 0 {
		gen, from = recs[n-1].Generation+1, now.Add(after)
	}
	k, err := m.newUpstreamKey(idp, alg, gen, now, from)
	if err != nil {
		return UpstreamKeyInfo{}, err
	}
	if err := m.store.CreateKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return UpstreamKeyInfo{}, fmt.Errorf("keys: another key for %s was made at the same time: %w", idp, err)
		}
		return UpstreamKeyInfo{}, fmt.Errorf("keys: create the key for %s: %w", idp, err)
	}
	if active := signingUpstream(recs, now); active >= 0 {
		for _, r := range recs[:active] {
			if err := m.store.DeleteKey(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return UpstreamKeyInfo{}, fmt.Errorf("keys: delete old key %s of %s: %w", r.ID, idp, err)
			}
		}
	}
	m.log.Info("upstream key rotated", "idp", idp, "kid", k.ID, "alg", k.Algorithm, "signs_from", k.ActiveFrom)
	infos, err := upstreamInfos([]store.Key{k}, now)
	if err != nil {
		return UpstreamKeyInfo{}, err
	}
	return infos[0], nil
}

// UpstreamKey returns the private key that signs the provider's client
// assertions now, as a JWK with kid and alg: of the provider's keys, the
// one with the latest ActiveFrom that is not after now. It reads the store
// each time, so a rotation by another process counts at once; a login
// costs one read and one unseal.
func (m *Manager) UpstreamKey(ctx context.Context, idp string) (*jose.JSONWebKey, error) {
	recs, err := m.store.Keys(ctx, UpstreamPurpose(idp))
	if err != nil {
		return nil, fmt.Errorf("keys: load the keys for %s: %w", idp, err)
	}
	i := signingUpstream(recs, m.now())
	if i < 0 {
		return nil, fmt.Errorf("%w for %s", ErrNoUpstreamKey, idp)
	}
	rec := recs[i]
	der, err := m.sealer.Open(rec.Sealed, aad(rec))
	if err != nil {
		return nil, fmt.Errorf("keys: upstream key %s of %s: %w", rec.ID, idp, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: upstream key %s of %s: %w", rec.ID, idp, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: upstream key %s of %s has unsupported type %T", rec.ID, idp, parsed)
	}
	return &jose.JSONWebKey{Key: priv, KeyID: rec.ID, Algorithm: rec.Algorithm, Use: "sig"}, nil
}

// UpstreamKeys lists the provider's keys, oldest first, with their public
// halves. It reads only what is stored in clear, so it needs no
// key-encryption key.
func UpstreamKeys(ctx context.Context, s Store, idp string, now time.Time) ([]UpstreamKeyInfo, error) {
	recs, err := s.Keys(ctx, UpstreamPurpose(idp))
	if err != nil {
		return nil, fmt.Errorf("keys: load the keys for %s: %w", idp, err)
	}
	return upstreamInfos(recs, now)
}

// UpstreamJWKS is the key set to register at the provider: the public
// halves of every key it has, the signing one and any next or old one.
func UpstreamJWKS(ctx context.Context, s Store, idp string, now time.Time) (jose.JSONWebKeySet, error) {
	infos, err := UpstreamKeys(ctx, s, idp, now)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range infos {
		set.Keys = append(set.Keys, k.Public)
	}
	return set, nil
}

func (m *Manager) newUpstreamKey(idp string, alg jose.SignatureAlgorithm, gen int64, now, from time.Time) (store.Key, error) {
	if alg == "" {
		alg = DefaultUpstreamAlgorithm
	}
	if !slices.Contains(UpstreamAlgorithms, alg) {
		return store.Key{}, fmt.Errorf("keys: algorithm %q is not one of RS256, PS256, ES256", alg)
	}
	return m.newSealedKey(store.Key{Generation: gen, ActiveFrom: from}, now, UpstreamPurpose(idp), alg)
}

// signingUpstream is the index of the key that signs at now, -1 if none
// does yet. recs are ordered by Generation, and a later generation never
// is meant to be replaced by an earlier one: the last one started signs.
func signingUpstream(recs []store.Key, now time.Time) int {
	active := -1
	for i, r := range recs {
		if !now.Before(r.ActiveFrom) {
			active = i
		}
	}
	return active
}

func upstreamInfos(recs []store.Key, now time.Time) ([]UpstreamKeyInfo, error) {
	active := signingUpstream(recs, now)
	out := make([]UpstreamKeyInfo, 0, len(recs))
	for i, r := range recs {
		var pub jose.JSONWebKey
		if err := json.Unmarshal(r.Public, &pub); err != nil || !pub.IsPublic() {
			return nil, fmt.Errorf("keys: upstream key %s: public part unreadable", r.ID)
		}
		st := UpstreamOld
		switch {
		case i == active:
			st = UpstreamSigning
		case i > active:
			st = UpstreamNext
		}
		out = append(out, UpstreamKeyInfo{ID: r.ID, Algorithm: r.Algorithm, Generation: r.Generation,
			CreatedAt: r.CreatedAt, ActiveFrom: r.ActiveFrom, Status: st, Public: pub})
	}
	return out, nil
}
