package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// key returns a key with every field set; times carry nanoseconds and a
// zone other than UTC so that the round trip is tested.
func key(id string, purpose store.KeyPurpose, generation int64) store.Key {
	oslo := time.FixedZone("CEST", 2*3600)
	k := store.Key{
		ID:         id,
		Purpose:    purpose,
		Generation: generation,
		Algorithm:  "HS256",
		Sealed:     []byte("sealed\x00\xff:" + id),
		CreatedAt:  time.Date(2031, 5, 17, 12, 0, 0, 123456789, oslo).Add(time.Duration(generation) * time.Hour),
		ActiveFrom: time.Date(2031, 5, 18, 12, 0, 0, 987654321, oslo).Add(time.Duration(generation) * time.Hour),
	}
	if purpose == store.PurposeSigning || purpose == store.PurposeIDSigning {
		k.Algorithm = "RS256"
		k.Public = []byte(`{"kty":"RSA","kid":"` + id + `","n":"AQAB","e":"AQAB"}`)
	}
	return k
}

// checkKeys fails unless got holds exactly the keys of want, in order, with
// times in UTC at Precision.
func checkKeys(t *testing.T, got, want []store.Key) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d keys %v, want %d", len(got), keyIDs(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		checkStoreTime(t, g.ID+" CreatedAt", g.CreatedAt)
		checkStoreTime(t, g.ID+" ActiveFrom", g.ActiveFrom)
		g.CreatedAt, g.ActiveFrom = canonTime(g.CreatedAt), canonTime(g.ActiveFrom)
		w.CreatedAt, w.ActiveFrom = canonTime(w.CreatedAt), canonTime(w.ActiveFrom)
		if !reflect.DeepEqual(emptyToNil(g), emptyToNil(w)) {
			t.Errorf("key %d is\n%+v\nwant\n%+v", i, g, w)
		}
	}
}

func keyIDs(keys []store.Key) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func runKeys(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateList", func(t *testing.T) {
		s := open(t)
		if got, err := s.Keys(t.Context(), store.PurposeSigning); err != nil || len(got) != 0 {
			t.Fatalf("Keys of an empty store = %v, %v; want none", keyIDs(got), err)
		}
		// Created out of order, with generations that sort differently
		// as strings, and the two purposes interleaved.
		signing := map[int64]store.Key{}
		nonce := map[int64]store.Key{}
		for _, g := range []int64{3, 10, 1, 2} {
			signing[g] = key(fmt.Sprintf("sig-%d", g), store.PurposeSigning, g)
			nonce[g] = key(fmt.Sprintf("nonce-%d", g), store.PurposeDPoPNonce, g)
			for _, k := range []store.Key{signing[g], nonce[g]} {
				if err := s.CreateKey(t.Context(), k); err != nil {
					t.Fatalf("CreateKey(%s): %v", k.ID, err)
				}
			}
		}
		// A key with no public part and zero times.
		bare := store.Key{ID: "bare", Purpose: store.PurposeDPoPNonce, Generation: 20, Algorithm: "HS256", Sealed: []byte{1}}
		if err := s.CreateKey(t.Context(), bare); err != nil {
			t.Fatalf("CreateKey(bare): %v", err)
		}

		got, err := s.Keys(t.Context(), store.PurposeSigning)
		if err != nil {
			t.Fatalf("Keys(signing): %v", err)
		}
		checkKeys(t, got, []store.Key{signing[1], signing[2], signing[3], signing[10]})
		got, err = s.Keys(t.Context(), store.PurposeDPoPNonce)
		if err != nil {
			t.Fatalf("Keys(dpop-nonce): %v", err)
		}
		checkKeys(t, got, []store.Key{nonce[1], nonce[2], nonce[3], nonce[10], bare})
		if got, err := s.Keys(t.Context(), "other"); err != nil || len(got) != 0 {
			t.Errorf("Keys(other) = %v, %v; want none", keyIDs(got), err)
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		tests := []struct {
			name    string
			second  store.Key // the store holds key("k1", signing, 1)
			wantErr error
		}{
			{"same ID", key("k1", store.PurposeDPoPNonce, 2), store.ErrAlreadyExists},
			{"same purpose and generation", key("k2", store.PurposeSigning, 1), store.ErrAlreadyExists},
			{"same generation, other purpose", key("k2", store.PurposeDPoPNonce, 1), nil},
			{"next generation", key("k2", store.PurposeSigning, 2), nil},
			// ID-token keys number their generations apart from the
			// access-token keys (keys.Manager keeps both).
			{"same generation, ID-token purpose", key("k2", store.PurposeIDSigning, 1), nil},
			{"same ID, ID-token purpose", key("k1", store.PurposeIDSigning, 2), store.ErrAlreadyExists},
			// A retirement marker of an ID-token algorithm holds no key.
			{"ID-token retirement marker", store.Key{ID: "retired-ES256-1", Purpose: store.PurposeIDSigning, Generation: 1,
				Algorithm: "ES256", CreatedAt: time.Date(2031, 5, 17, 12, 0, 0, 0, time.UTC), ActiveFrom: time.Date(2031, 5, 17, 12, 0, 0, 0, time.UTC)}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				first := key("k1", store.PurposeSigning, 1)
				if err := s.CreateKey(t.Context(), first); err != nil {
					t.Fatalf("CreateKey(first): %v", err)
				}
				if err := s.CreateKey(t.Context(), tt.second); !errors.Is(err, tt.wantErr) {
					t.Fatalf("CreateKey(second): err = %v, want %v", err, tt.wantErr)
				}
				want := map[store.KeyPurpose][]store.Key{first.Purpose: {first}}
				if tt.wantErr == nil {
					want[tt.second.Purpose] = append(want[tt.second.Purpose], tt.second)
				}
				for _, p := range []store.KeyPurpose{store.PurposeSigning, store.PurposeIDSigning, store.PurposeDPoPNonce} {
					got, err := s.Keys(t.Context(), p)
					if err != nil {
						t.Fatalf("Keys(%s): %v", p, err)
					}
					checkKeys(t, got, want[p])
				}
			})
		}
	})

	t.Run("ConcurrentRotation", func(t *testing.T) {
		// Instances racing to create the next generation agree on one.
		s := open(t)
		errs := race(goroutines, func(i int) error {
			return s.CreateKey(t.Context(), key(fmt.Sprintf("candidate-%d", i), store.PurposeSigning, 7))
		})
		winner := exactlyOneWins(t, errs, store.ErrAlreadyExists)
		got, err := s.Keys(t.Context(), store.PurposeSigning)
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		if winner >= 0 {
			checkKeys(t, got, []store.Key{key(fmt.Sprintf("candidate-%d", winner), store.PurposeSigning, 7)})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		for _, k := range []store.Key{key("a", store.PurposeSigning, 1), key("b", store.PurposeSigning, 2)} {
			if err := s.CreateKey(t.Context(), k); err != nil {
				t.Fatalf("CreateKey(%s): %v", k.ID, err)
			}
		}
		if err := s.DeleteKey(t.Context(), "a"); err != nil {
			t.Fatalf("DeleteKey(a): %v", err)
		}
		got, err := s.Keys(t.Context(), store.PurposeSigning)
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		checkKeys(t, got, []store.Key{key("b", store.PurposeSigning, 2)})
		if err := s.DeleteKey(t.Context(), "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteKey(a) again: err = %v, want %v", err, store.ErrNotFound)
		}
		if err := s.DeleteKey(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteKey(missing): err = %v, want %v", err, store.ErrNotFound)
		}
	})
}
