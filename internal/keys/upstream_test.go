package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Instances starting at once on a new store end with one key for the
// provider, and every one of them signs with it.
func TestEnsureUpstreamKeyConcurrent(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	sealer := newSealer(t)
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	const n = 8
	ms := make([]*Manager, n)
	for i := range ms {
		m, err := NewManager(ctx, st, sealer, Config{Algorithm: jose.ES256}, c.Now, nil)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ms[i].EnsureUpstreamKey(ctx, "idporten", jose.ES256)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	recs, err := st.Keys(ctx, UpstreamPurpose("idporten"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("stored keys: %d, %v; want exactly 1", len(recs), err)
	}
	for i, m := range ms {
		k, err := m.UpstreamKey(ctx, "idporten")
		if err != nil || k.KeyID != recs[0].ID || k.Algorithm != "ES256" || k.IsPublic() {
			t.Fatalf("instance %d signs with %v (%v), want private %s", i, k, err, recs[0].ID)
		}
	}
	// Once made, a second start changes nothing, whatever it asks for.
	if err := ms[0].EnsureUpstreamKey(ctx, "idporten", jose.RS256); err != nil {
		t.Fatal(err)
	}
	if recs2, _ := st.Keys(ctx, UpstreamPurpose("idporten")); len(recs2) != 1 || recs2[0].ID != recs[0].ID {
		t.Fatalf("second start made a key: %+v", recs2)
	}
	// Another provider has generations of its own.
	if err := ms[0].EnsureUpstreamKey(ctx, "helseid", ""); err != nil {
		t.Fatal(err)
	}
	if k, err := ms[0].UpstreamKey(ctx, "helseid"); err != nil || k.Algorithm != string(DefaultUpstreamAlgorithm) || k.KeyID == recs[0].ID {
		t.Fatalf("second provider's key: %v, %v", k, err)
	}
}

// The private key is in the store only sealed: neither its DER nor its
// private scalar appears in the record, the public part has no private
// member, and the record does not open with another key-encryption key.
func TestUpstreamKeySealed(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	m, err := NewManager(ctx, st, newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		idp := "p-" + string(alg)
		if err := m.EnsureUpstreamKey(ctx, idp, alg); err != nil {
			t.Fatal(err)
		}
		k, err := m.UpstreamKey(ctx, idp)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Key)
		if err != nil {
			t.Fatal(err)
		}
		var secret []byte
		switch p := k.Key.(type) {
		case *rsa.PrivateKey:
			secret = p.D.Bytes()
		case *ecdsa.PrivateKey:
			secret = p.D.Bytes()
		default:
			t.Fatalf("%s: key type %T", alg, k.Key)
		}
		recs, _ := st.Keys(ctx, UpstreamPurpose(idp))
		rec := recs[0]
		if bytes.Contains(rec.Sealed, der) || bytes.Contains(rec.Sealed, secret) || bytes.Contains(rec.Public, []byte(`"d"`)) {
			t.Fatalf("%s: the private key is in the record in clear", alg)
		}
		if _, err := newSealer(t).Open(rec.Sealed, aad(rec)); !errors.Is(err, ErrWrongKEK) {
			t.Fatalf("%s: opens with another KEK: %v", alg, err)
		}
	}
}

// A rotation publishes the new key at once and signs with it only from
// its start; the next rotation deletes the key that no longer signs.
func TestRotateUpstreamKey(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	m, err := NewManager(ctx, st, newSealer(t), Config{Algorithm: jose.ES256}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpstreamKey(ctx, "idporten"); !errors.Is(err, ErrNoUpstreamKey) {
		t.Fatalf("no key yet: %v, want ErrNoUpstreamKey", err)
	}
	first, err := m.RotateUpstreamKey(ctx, "idporten", "", 24*time.Hour)
	if err != nil || first.Status != UpstreamSigning || !first.ActiveFrom.Equal(c.Now()) {
		t.Fatalf("first key: %+v, %v; want signing at once", first, err)
	}
	second, err := m.RotateUpstreamKey(ctx, "idporten", jose.PS256, 24*time.Hour)
	if err != nil || second.Status != UpstreamNext || second.Algorithm != "PS256" {
		t.Fatalf("second key: %+v, %v", second, err)
	}
	set, err := UpstreamJWKS(ctx, st, "idporten", c.Now())
	if err != nil || len(set.Keys) != 2 || set.Keys[0].KeyID != first.ID || set.Keys[1].KeyID != second.ID {
		t.Fatalf("JWKS %v, %v; want both keys", kids(set), err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.Algorithm == "" {
			t.Fatalf("published key %s: public %v, use %q, alg %q", k.KeyID, k.IsPublic(), k.Use, k.Algorithm)
		}
	}
	if k, _ := m.UpstreamKey(ctx, "idporten"); k.KeyID != first.ID {
		t.Fatalf("signs with %s before the new key's start, want %s", k.KeyID, first.ID)
	}
	c.Advance(24 * time.Hour)
	if k, _ := m.UpstreamKey(ctx, "idporten"); k.KeyID != second.ID || k.Algorithm != "PS256" {
		t.Fatalf("signs with %s after the new key's start, want %s", k.KeyID, second.ID)
	}
	infos, _ := UpstreamKeys(ctx, st, "idporten", c.Now())
	if len(infos) != 2 || infos[0].Status != UpstreamOld || infos[1].Status != UpstreamSigning {
		t.Fatalf("statuses %+v", infos)
	}
	third, err := m.RotateUpstreamKey(ctx, "idporten", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	set, _ = UpstreamJWKS(ctx, st, "idporten", c.Now())
	if got := kids(set); len(got) != 2 || got[0] != second.ID || got[1] != third.ID {
		t.Fatalf("after the third rotation the JWKS has %v, want [%s %s]", got, second.ID, third.ID)
	}
	if _, err := m.RotateUpstreamKey(ctx, "idporten", jose.HS256, time.Hour); err == nil {
		t.Fatal("HS256 key made")
	}
}
