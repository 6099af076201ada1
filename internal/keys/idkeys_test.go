package keys

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/store"
)

// algSet is what a server's registry asks for, changeable as a registry
// change would change it.
type algSet struct {
	mu   sync.Mutex
	algs []jose.SignatureAlgorithm
}

func (a *algSet) get() []jose.SignatureAlgorithm {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.algs)
}

func (a *algSet) set(algs ...jose.SignatureAlgorithm) {
	a.mu.Lock()
	a.algs = algs
	a.mu.Unlock()
}

func idSigner(t *testing.T, m *Manager, alg jose.SignatureAlgorithm) *Signer {
	t.Helper()
	s, err := m.IDTokenSigner(alg)
	if err != nil {
		t.Fatalf("IDTokenSigner(%q): %v", alg, err)
	}
	return s
}

// checkPublished fails unless s's key is in set under its RFC 7638
// thumbprint with its algorithm, and a token it signs verifies with it.
func checkPublished(t *testing.T, set jose.JSONWebKeySet, s *Signer) {
	t.Helper()
	keys := set.Key(s.KeyID())
	if len(keys) != 1 {
		t.Fatalf("key %s (%s) is not published", s.KeyID(), s.Algorithm())
	}
	if keys[0].Algorithm != string(s.Algorithm()) {
		t.Fatalf("key %s published with alg %s, signs %s", s.KeyID(), keys[0].Algorithm, s.Algorithm())
	}
	if tp, err := jws.Thumbprint(&keys[0]); err != nil || tp != s.KeyID() {
		t.Fatalf("kid %s is not the thumbprint %s (%v)", s.KeyID(), tp, err)
	}
	tok, err := s.SignIDToken([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{s.Algorithm()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Verify(keys[0].Public()); err != nil {
		t.Fatalf("%s ID token does not verify with the published key: %v", s.Algorithm(), err)
	}
}

// A new deployment signs with every first key at once: access tokens
// ES256, ID tokens RS256 by default and in each algorithm a client asks
// for, every key published with its own algorithm.
func TestIDTokenKeysFirstStart(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	want := &algSet{algs: []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.ES384, jose.HS256, "none"}}
	m, err := NewManager(t.Context(), openStore(t), newSealer(t), Config{Algorithm: jose.ES256, IDTokenAlgorithms: want.get}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	access := mustSigner(t, m)
	tests := []struct {
		name    string
		ask     jose.SignatureAlgorithm
		wantAlg jose.SignatureAlgorithm
	}{
		{"nothing asked: RS256", "", jose.RS256},
		{"RS256", jose.RS256, jose.RS256},
		{"ES256: the access-token key", jose.ES256, jose.ES256},
		{"PS256", jose.PS256, jose.PS256},
		{"ES384", jose.ES384, jose.ES384},
	}
	set := m.JWKS()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idSigner(t, m, tt.ask)
			if s.Algorithm() != tt.wantAlg {
				t.Fatalf("alg %s, want %s", s.Algorithm(), tt.wantAlg)
			}
			if (s.KeyID() == access.KeyID()) != (tt.wantAlg == jose.ES256) {
				t.Fatalf("kid %s, access-token kid %s: only ES256 ID tokens share its key", s.KeyID(), access.KeyID())
			}
			checkPublished(t, set, s)
		})
	}
	// HS256 and none were ignored: no key, no ID token.
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, "none", jose.RS384} {
		var ke *IDKeyError
		if _, err := m.IDTokenSigner(alg); !errors.As(err, &ke) || !ke.From.IsZero() {
			t.Errorf("IDTokenSigner(%s): %v, want an IDKeyError with no key published", alg, err)
		}
	}
	if got := m.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.PS256}) {
		t.Fatalf("IDTokenAlgorithms %v", got)
	}
	if n := len(set.Keys); n != 4 {
		t.Fatalf("JWKS has %d keys, want 4 (ES256, RS256, PS256, ES384)", n)
	}
}

// An algorithm a registry change asks for later gets a key at the next
// maintenance, published for the lead before it signs; until then a
// client that asked for it gets no ID token, and says so with the time.
func TestIDTokenKeyForNewAlgorithm(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	want := &algSet{}
	m, err := NewManager(t.Context(), openStore(t), newSealer(t), Config{IDTokenAlgorithms: want.get}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, m, ""); s != mustSigner(t, m) {
		t.Fatal("RS256 access tokens: the access-token key must sign RS256 ID tokens")
	}
	if n := len(m.JWKS().Keys); n != 1 {
		t.Fatalf("JWKS has %d keys, want the one RS256 key", n)
	}

	want.set(jose.ES256)
	c.Advance(time.Hour)
	var ke *IDKeyError
	if _, err := m.IDTokenSigner(jose.ES256); !errors.As(err, &ke) || !ke.From.IsZero() {
		t.Fatalf("before maintenance: %v, want no key", err)
	}
	mustMaintain(t, m)
	if _, err := m.IDTokenSigner(jose.ES256); !errors.As(err, &ke) || !ke.From.Equal(c.Now().Add(DefaultPublishLead)) {
		t.Fatalf("in the lead: %v, want an IDKeyError saying it signs from %v", err, c.Now().Add(DefaultPublishLead))
	}
	es := onlyAlg(m.JWKS(), jose.ES256)
	if len(es.Keys) != 1 {
		t.Fatalf("the new ES256 key is not published: %v", kids(m.JWKS()))
	}
	if got := m.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Fatalf("IDTokenAlgorithms in the lead %v, want only RS256", got)
	}
	c.Advance(DefaultPublishLead)
	s := idSigner(t, m, jose.ES256)
	if s.KeyID() != es.Keys[0].KeyID {
		t.Fatalf("signs with %s, want the published %s", s.KeyID(), es.Keys[0].KeyID)
	}
	if got := m.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}) {
		t.Fatalf("IDTokenAlgorithms %v", got)
	}
}

// Each algorithm's key rotates on its own through the whole life:
// published, signing, retired, expired_jwks, deleted.
func TestIDTokenKeysRotate(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	want := &algSet{algs: []jose.SignatureAlgorithm{jose.PS256}}
	cfg := Config{Algorithm: jose.ES256, IDTokenAlgorithms: want.get, TokenLifetime: time.Hour, ExpiredRetention: 30 * 24 * time.Hour}
	m, err := NewManager(ctx, st, newSealer(t), cfg, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256}
	first := map[jose.SignatureAlgorithm]*Signer{}
	for _, alg := range algs {
		first[alg] = idSigner(t, m, alg)
	}
	c.Advance(DefaultRotationPeriod - DefaultPublishLead)
	mustMaintain(t, m)
	for _, alg := range algs {
		if s := idSigner(t, m, alg); s != first[alg] {
			t.Fatalf("%s: the successor signs before the lead is over", alg)
		}
		if n := len(onlyAlg(m.JWKS(), alg).Keys); n != 2 {
			t.Fatalf("%s: %d keys published, want the key and its successor", alg, n)
		}
	}
	c.Advance(DefaultPublishLead)
	set := m.JWKS()
	for _, alg := range algs {
		s := idSigner(t, m, alg)
		if s == first[alg] || s.Algorithm() != alg {
			t.Fatalf("%s: no successor signs after the period", alg)
		}
		checkPublished(t, set, s)
		checkPublished(t, set, first[alg]) // retired, still published
		if st := statusOf(m, first[alg].KeyID()); st != StatusRetired {
			t.Fatalf("%s: old key %s", alg, st)
		}
	}
	c.Advance(time.Hour + RetireMargin)
	for _, alg := range algs {
		if has(m.JWKS(), first[alg].KeyID()) || !has(m.ExpiredJWKS(), first[alg].KeyID()) {
			t.Fatalf("%s: the old key is not in expired_jwks alone", alg)
		}
	}
	c.Advance(30 * 24 * time.Hour)
	mustMaintain(t, m)
	for _, p := range []store.KeyPurpose{store.PurposeSigning, store.PurposeIDSigning} {
		recs, err := st.Keys(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			for alg, s := range first {
				if r.ID == s.KeyID() {
					t.Fatalf("%s: old key still stored after retention", alg)
				}
			}
		}
	}
}

// An algorithm nobody asks for any more keeps its key to the end of the
// key's period, is retired then rather than replaced, and is gone once
// retention is over; asked for again, it starts over with a key published
// for the lead.
func TestIDTokenAlgorithmRetired(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	want := &algSet{algs: []jose.SignatureAlgorithm{jose.ES256}}
	m, err := NewManager(ctx, st, newSealer(t), Config{IDTokenAlgorithms: want.get, ExpiredRetention: 30 * 24 * time.Hour}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	es := idSigner(t, m, jose.ES256)
	want.set()
	c.Advance(DefaultRotationPeriod - time.Minute)
	mustMaintain(t, m)
	if s := idSigner(t, m, jose.ES256); s != es {
		t.Fatal("an unwanted key must sign to the end of its period")
	}
	if n := len(onlyAlg(m.JWKS(), jose.ES256).Keys); n != 1 {
		t.Fatalf("%d ES256 keys published: an unwanted algorithm gets no successor", n)
	}
	c.Advance(time.Minute)
	mustMaintain(t, m)
	var ke *IDKeyError
	if _, err := m.IDTokenSigner(jose.ES256); !errors.As(err, &ke) {
		t.Fatalf("a retired algorithm still signs: %v", err)
	}
	if statusOf(m, es.KeyID()) != StatusRetired || !has(m.JWKS(), es.KeyID()) {
		t.Fatal("the retired key must stay published while its tokens live")
	}
	if got := m.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Fatalf("IDTokenAlgorithms %v, want [RS256]", got)
	}
	c.Advance(DefaultTokenLifetime + RetireMargin)
	if !has(m.ExpiredJWKS(), es.KeyID()) {
		t.Fatal("the retired key is not in expired_jwks")
	}
	c.Advance(30 * 24 * time.Hour)
	mustMaintain(t, m) // deletes the key
	mustMaintain(t, m) // then the marker
	if recs, err := st.Keys(ctx, store.PurposeIDSigning); err != nil || len(recs) != 0 {
		t.Fatalf("%d ID-token records left (%v)", len(recs), err)
	}
	want.set(jose.ES256)
	mustMaintain(t, m)
	if _, err := m.IDTokenSigner(jose.ES256); !errors.As(err, &ke) || !ke.From.Equal(c.Now().Add(DefaultPublishLead)) {
		t.Fatalf("asked for again: %v, want a new key published for the lead", err)
	}
}

// A tool that does not know the registry (IDTokenAlgorithms nil) keeps
// every ID-token chain rotating and retires none.
func TestIDTokenKeysWithoutRegistry(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	sealer := newSealer(t)
	want := &algSet{algs: []jose.SignatureAlgorithm{jose.ES256}}
	m, err := NewManager(ctx, st, sealer, Config{IDTokenAlgorithms: want.get}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	es := idSigner(t, m, jose.ES256)
	c.Advance(DefaultRotationPeriod)
	tool, err := NewManager(ctx, st, sealer, Config{}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, tool, jose.ES256); s.KeyID() != es.KeyID() {
		t.Fatal("the tool replaced the ES256 key at once")
	}
	if n := len(onlyAlg(tool.JWKS(), jose.ES256).Keys); n != 2 {
		t.Fatalf("%d ES256 keys, want the key and the successor the tool published", n)
	}
	// Rotate makes a key for every chain.
	k, err := tool.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, tool, jose.ES256); s.KeyID() == es.KeyID() {
		t.Fatal("rotate --now left the ES256 ID-token key signing")
	}
	if mustSigner(t, tool).KeyID() != k.ID {
		t.Fatal("rotate --now: the access-token key does not sign")
	}
	for _, ki := range tool.List() {
		if ki.IDOnly != (ki.Algorithm == "ES256") {
			t.Fatalf("List: %s %s IDOnly %v", ki.ID, ki.Algorithm, ki.IDOnly)
		}
	}
	stored, err := ListStored(ctx, st, Config{}, c.Now)
	if err != nil || len(stored) != len(tool.List()) {
		t.Fatalf("ListStored %d keys (%v), List %d", len(stored), err, len(tool.List()))
	}
}

// Instances starting at once on a new store race to store the first
// ID-token key; whichever wins signs at once, also when the winner saw the
// other's access-token key already.
func TestIDTokenKeysConcurrentFirstStart(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	sealer := newSealer(t)
	if _, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256}, c.Now, nil); err != nil {
		t.Fatal(err)
	}
	// The other instance has stored its access-token key, not yet its
	// ID-token key.
	recs, err := st.Keys(ctx, store.PurposeIDSigning)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := st.DeleteKey(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Second)
	m, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256, IDTokenAlgorithms: (&algSet{}).get}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, m, jose.RS256); s.Algorithm() != jose.RS256 {
		t.Fatalf("alg %s", s.Algorithm())
	}
}

// A deployment whose access tokens were ES256 before ID-token keys were
// kept per algorithm has no RS256 key. Its first one is published for the
// lead; meanwhile the ES256 key signs the ID tokens of clients that asked
// for nothing, as it did, and a client that asked for RS256 gets none.
func TestIDTokenKeysUpgrade(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	sealer := newSealer(t)
	old, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What the older version left: the access-token keys alone.
	recs, err := st.Keys(ctx, store.PurposeIDSigning)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := st.DeleteKey(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	access := mustSigner(t, old)
	c.Advance(time.Hour)
	m, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256, IDTokenAlgorithms: (&algSet{}).get}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, m, ""); s.KeyID() != access.KeyID() {
		t.Fatalf("in the lead a client that asked for nothing gets %s, want the access-token key", s.Algorithm())
	}
	var ke *IDKeyError
	if _, err := m.IDTokenSigner(jose.RS256); !errors.As(err, &ke) || !ke.From.Equal(c.Now().Add(DefaultPublishLead)) {
		t.Fatalf("RS256 asked for in the lead: %v", err)
	}
	if got := m.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.ES256}) {
		t.Fatalf("IDTokenAlgorithms in the lead %v, want [ES256]", got)
	}
	rs := onlyAlg(m.JWKS(), jose.RS256)
	if len(rs.Keys) != 1 {
		t.Fatal("the first RS256 key is not published")
	}
	c.Advance(DefaultPublishLead)
	if s := idSigner(t, m, ""); s.KeyID() != rs.Keys[0].KeyID {
		t.Fatal("after the lead the RS256 key must sign")
	}
	if got := m.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Fatalf("IDTokenAlgorithms %v, want [RS256]", got)
	}
}

// Changing the access-token algorithm: ID tokens stay RS256 throughout.
// From RS256 to ES256 the RS256 access key signs them until an RS256
// ID-token key takes over at the same instant as the ES256 access key;
// back to RS256, that chain is retired once the access key covers RS256
// again.
func TestIDTokensAcrossAlgorithmChange(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := openStore(t)
	sealer := newSealer(t)
	none := (&algSet{}).get
	rs, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.RS256, IDTokenAlgorithms: none}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	rsKey := mustSigner(t, rs)
	c.Advance(time.Hour)
	es, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256, IDTokenAlgorithms: none}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, es, ""); s.KeyID() != rsKey.KeyID() {
		t.Fatal("in the lead the RS256 access key must sign ID tokens")
	}
	c.Advance(DefaultPublishLead)
	mustMaintain(t, es)
	s := idSigner(t, es, "")
	if s.Algorithm() != jose.RS256 || s.KeyID() == rsKey.KeyID() || mustSigner(t, es).Algorithm() != jose.ES256 {
		t.Fatalf("after the lead: ID tokens %s %s, access tokens %s", s.Algorithm(), s.KeyID(), mustSigner(t, es).Algorithm())
	}
	idKey := s
	// Back to RS256.
	c.Advance(time.Hour)
	back, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.RS256, IDTokenAlgorithms: none}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := idSigner(t, back, ""); s.KeyID() != idKey.KeyID() {
		t.Fatal("in the lead the RS256 ID-token key must go on signing")
	}
	c.Advance(DefaultPublishLead)
	mustMaintain(t, back)
	if s := idSigner(t, back, ""); s != mustSigner(t, back) {
		t.Fatal("after the lead the RS256 access key must sign ID tokens")
	}
	c.Advance(DefaultRotationPeriod)
	mustMaintain(t, back)
	if st := statusOf(back, idKey.KeyID()); st != StatusRetired {
		t.Fatalf("the RS256 ID-token chain, covered again, is %s at the end of its period, want retired", st)
	}
}
