package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	kek, err := ParseKEK(NewKEK())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// onlyAlg is the keys of set with algorithm alg.
func onlyAlg(set jose.JSONWebKeySet, alg jose.SignatureAlgorithm) jose.JSONWebKeySet {
	out := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range set.Keys {
		if k.Algorithm == string(alg) {
			out.Keys = append(out.Keys, k)
		}
	}
	return out
}

func has(set jose.JSONWebKeySet, kid string) bool { return len(set.Key(kid)) == 1 }

func signerKID(t *testing.T, m *Manager) string {
	t.Helper()
	s, err := m.Signer()
	if err != nil {
		t.Fatal(err)
	}
	return s.KeyID()
}

// TestRotationLife follows one key through its whole life with a fake
// clock: published, signing, retired, expired_jwks, deleted.
func TestRotationLife(t *testing.T) {
	// The RS256 ID-token keys that come with ES256 access tokens have a
	// life of their own (TestIDTokenKeysRotate); this test follows the
	// access-token keys.
	accessKeys := func(set jose.JSONWebKeySet) jose.JSONWebKeySet { return onlyAlg(set, jose.ES256) }
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	cfg := Config{Algorithm: jose.ES256, PublishLead: 24 * time.Hour, RotationPeriod: 90 * 24 * time.Hour,
		TokenLifetime: time.Hour, ExpiredRetention: 30 * 24 * time.Hour}
	m, err := NewManager(ctx, st, newSealer(t), cfg, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := signerKID(t, m)
	if got := kids(accessKeys(m.JWKS())); len(got) != 1 || got[0] != first {
		t.Fatalf("JWKS %v, want [%s]", got, first)
	}
	token, err := mustSigner(t, m).Sign([]byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}

	// A day before the period ends the successor is published, not used.
	c.Advance(89*24*time.Hour - time.Minute)
	mustMaintain(t, m)
	if len(accessKeys(m.JWKS()).Keys) != 1 {
		t.Fatalf("successor published too early: %v", kids(accessKeys(m.JWKS())))
	}
	c.Advance(time.Minute)
	mustMaintain(t, m)
	set := accessKeys(m.JWKS())
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS %v, want the successor published", kids(set))
	}
	second := set.Keys[0].KeyID
	if second == first || signerKID(t, m) != first {
		t.Fatalf("signer %s, want %s until the period ends", signerKID(t, m), first)
	}
	if st := statusOf(m, second); st != StatusNext {
		t.Fatalf("successor status %s", st)
	}
	// Maintaining again publishes nothing more.
	mustMaintain(t, m)
	if len(accessKeys(m.JWKS()).Keys) != 2 {
		t.Fatalf("JWKS %v after a second maintenance", kids(accessKeys(m.JWKS())))
	}

	// The period ends: the successor signs, the first stays published.
	c.Advance(24 * time.Hour)
	if signerKID(t, m) != second {
		t.Fatal("successor does not sign after the period")
	}
	if !has(accessKeys(m.JWKS()), first) || statusOf(m, first) != StatusRetired {
		t.Fatalf("retired key must stay published: %v", kids(accessKeys(m.JWKS())))
	}
	verifyWith(t, accessKeys(m.JWKS()), first, token)

	// Once every token it signed has expired it moves to expired_jwks.
	c.Advance(time.Hour + RetireMargin)
	if has(accessKeys(m.JWKS()), first) || !has(m.ExpiredJWKS(), first) {
		t.Fatalf("jwks %v expired %v", kids(accessKeys(m.JWKS())), kids(m.ExpiredJWKS()))
	}
	// After the retention it is deleted from the store.
	c.Advance(30 * 24 * time.Hour)
	mustMaintain(t, m)
	recs, err := st.Keys(ctx, store.PurposeSigning)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == first {
			t.Fatal("key still stored after retention")
		}
	}
	if has(m.ExpiredJWKS(), first) {
		t.Fatal("deleted key still in expired_jwks")
	}
}

func TestManualRotation(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m, err := NewManager(ctx, openStore(t), newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := signerKID(t, m)
	next, err := m.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if signerKID(t, m) != first || !has(m.JWKS(), next.ID) {
		t.Fatal("rotation without --now must publish first and sign later")
	}
	if !next.ActiveFrom.Equal(c.Now().Add(DefaultPublishLead)) {
		t.Fatalf("signs from %v", next.ActiveFrom)
	}
	// --now preempts the waiting successor, which then never signs.
	now, err := m.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if signerKID(t, m) != now.ID {
		t.Fatal("--now rotation does not sign at once")
	}
	c.Advance(DefaultPublishLead + time.Minute)
	if signerKID(t, m) != now.ID {
		t.Fatal("an older successor took over from the --now key")
	}
	if st := statusOf(m, next.ID); st != StatusExpired {
		t.Fatalf("preempted key status %s, want expired (it never signed)", st)
	}
}

// Two instances on one store agree on one key, also when they start at
// once on an empty store.
func TestInstancesAgree(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	sealer := newSealer(t)
	var wg sync.WaitGroup
	ms := make([]*Manager, 4)
	errs := make([]error, 4)
	for i := range ms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ms[i], errs[i] = NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256}, c.Now, nil)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		mustMaintain(t, m)
		if signerKID(t, m) != signerKID(t, ms[0]) {
			t.Fatal("instances sign with different keys")
		}
	}
	recs, _ := st.Keys(ctx, store.PurposeSigning)
	if len(recs) != 1 {
		t.Fatalf("%d signing keys after a concurrent first start, want 1", len(recs))
	}
	// The same for the RS256 ID-token key that comes with ES256 access
	// tokens.
	if recs, _ := st.Keys(ctx, store.PurposeIDSigning); len(recs) != 1 {
		t.Fatalf("%d ID-token keys after a concurrent first start, want 1", len(recs))
	}
	for _, m := range ms {
		if s, err := m.IDTokenSigner(""); err != nil || s.KeyID() != mustIDSigner(t, ms[0]).KeyID() {
			t.Fatalf("instances sign ID tokens with different keys (%v)", err)
		}
	}
	// A rotation by one instance reaches the other at its next maintenance,
	// and the JWKS of both publish the new key before it signs.
	k, err := ms[0].Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	mustMaintain(t, ms[1])
	if !has(ms[1].JWKS(), k.ID) {
		t.Fatal("the other instance does not publish the new key")
	}
	c.Advance(DefaultPublishLead)
	if signerKID(t, ms[1]) != k.ID || signerKID(t, ms[0]) != k.ID {
		t.Fatal("instances disagree after the lead time")
	}
	// Nonces of one instance are accepted by the other.
	n := ms[0].Nonces().Issue(c.Now())
	if err := ms[1].Nonces().Check(n, c.Now()); err != nil {
		t.Fatalf("nonce of another instance refused: %v", err)
	}
}

func TestAlgorithmChange(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	sealer := newSealer(t)
	m, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.RS256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := mustSigner(t, m); s.Algorithm() != jose.RS256 {
		t.Fatalf("alg %s", s.Algorithm())
	}
	m2, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := mustSigner(t, m2); s.Algorithm() != jose.RS256 {
		t.Fatal("a new algorithm must be published before it signs")
	}
	c.Advance(DefaultPublishLead)
	if s := mustSigner(t, m2); s.Algorithm() != jose.ES256 {
		t.Fatalf("alg %s after the lead time", s.Algorithm())
	}
}

func TestNonceKeyRotation(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m, err := NewManager(ctx, openStore(t), newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(DefaultNonceRotation - 30*time.Second)
	old := m.Nonces().Issue(c.Now())
	c.Advance(30 * time.Second)
	mustMaintain(t, m)
	if err := m.Nonces().Check(old, c.Now()); err != nil {
		t.Fatalf("nonce of the previous key refused during rotation: %v", err)
	}
	c.Advance(nonceLead)
	mustMaintain(t, m)
	if m.Nonces().Issue(c.Now()) == old {
		t.Fatal("nonce did not change")
	}
}

func TestSealing(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Now()}
	st := openStore(t)
	m, err := NewManager(ctx, st, newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := st.Keys(ctx, store.PurposeSigning)
	var pub map[string]any
	if err := json.Unmarshal(recs[0].Public, &pub); err != nil {
		t.Fatal(err)
	}
	if _, ok := pub["d"]; ok {
		t.Fatal("the public part holds the private key")
	}
	if bytes.Contains(recs[0].Sealed, []byte("PRIVATE")) || len(recs[0].Sealed) < 100 {
		t.Fatal("sealed key does not look sealed")
	}
	if _, err := m.Signer(); err != nil {
		t.Fatal(err)
	}
	// Another KEK cannot open the keys: the server must refuse to start.
	if _, err := NewManager(ctx, st, newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("wrong KEK: got %v, want ErrWrongKEK", err)
	}
	// A sealed blob moved to another record does not open.
	s := newSealer(t)
	blob, _ := s.Seal([]byte("secret"), "signing|a")
	if _, err := s.Open(blob, "signing|b"); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("moved blob: got %v", err)
	}
}

func TestParseKEK(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string
	}{
		{"std base64", NewKEK(), ""},
		{"raw url base64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", ""},
		{"too short", "AAECAwQFBgcICQoLDA0ODw==", "must be 32 bytes, got 16"},
		{"not base64", "!!!", "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKEK(tt.in)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func statusOf(m *Manager, kid string) Status {
	for _, k := range m.List() {
		if k.ID == kid {
			return k.Status
		}
	}
	return ""
}

func mustSigner(t *testing.T, m *Manager) *Signer {
	t.Helper()
	s, err := m.Signer()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustIDSigner(t *testing.T, m *Manager) *Signer {
	t.Helper()
	s, err := m.IDTokenSigner("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMaintain(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func verifyWith(t *testing.T, set jose.JSONWebKeySet, kid, token string) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(set.Key(kid)[0]); err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
}

// A key superseded at the instant it became active may still have signed
// tokens at that instant: it stays published until they expire.
func TestSupersededAtActivation(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m, err := NewManager(ctx, openStore(t), newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := signerKID(t, m)
	if _, err := m.Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !has(m.JWKS(), first) || statusOf(m, first) != StatusRetired {
		t.Fatalf("first key %s: status %s, in JWKS %v", first, statusOf(m, first), has(m.JWKS(), first))
	}
}

// TestPseudonymKey: instances starting at once on one new store agree on
// one pseudonym key, a restart reads the same one, rotation and time leave
// it alone, and another key-encryption key cannot open it.
func TestPseudonymKey(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	path := filepath.Join(dir, "k.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sealer := newSealer(t)
	ms := make([]*Manager, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range ms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ms[i], errs[i] = NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256}, c.Now, nil)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	key := ms[0].PseudonymKey()
	if len(key) != 32 {
		t.Fatalf("pseudonym key has %d bytes, want 32", len(key))
	}
	for i, m := range ms {
		if !bytes.Equal(m.PseudonymKey(), key) {
			t.Fatalf("instance %d has another pseudonym key", i)
		}
	}
	if recs, _ := st.Keys(ctx, store.PurposePseudonym); len(recs) != 1 {
		t.Fatalf("%d pseudonym keys after a concurrent first start, want 1", len(recs))
	}
	// Rotations, a year of maintenance: still the same key.
	if _, err := ms[0].Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	c.Advance(365 * 24 * time.Hour)
	mustMaintain(t, ms[0])
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart on the same file.
	st2, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	m, err := NewManager(ctx, st2, sealer, Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.PseudonymKey(), key) {
		t.Fatal("the pseudonym key changed across a restart")
	}
	if recs, _ := st2.Keys(ctx, store.PurposePseudonym); len(recs) != 1 {
		t.Fatalf("%d pseudonym keys after a restart, want 1", len(recs))
	}
	if _, err := NewManager(ctx, st2, newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("another KEK: %v, want ErrWrongKEK", err)
	}
}
