package clustertest

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store/postgres"
)

// TestCluster starts two instances on one PostgreSQL database, at once on
// an empty one (both migrate, apply the registry and make the first keys),
// behind one issuer, and shows that they behave as one token service.
func TestCluster(t *testing.T) {
	s := newSetup(t, pgtest.URL(t))
	var a, b *instance
	var wg sync.WaitGroup
	wg.Go(func() { a = s.start(t, "sts-a") })
	wg.Go(func() { b = s.start(t, "sts-b") })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// A client assertion and a DPoP proof used at one instance are
	// refused at the other: the replay state is shared, and its check
	// atomic.
	t.Run("ReplayAcrossInstances", func(t *testing.T) {
		for _, dir := range []struct{ first, second *instance }{{a, b}, {b, a}} {
			r := s.newRequest(t, s.nonce(t, dir.first))
			if got := send(t, dir.first, r); got.Status != http.StatusOK {
				t.Fatalf("at %s: %v", dir.first.name, got)
			}
			got := send(t, dir.second, r)
			if got.Status != http.StatusUnauthorized || got.Error != "invalid_client" || got.Description != "client_assertion was already used (jti)" {
				t.Errorf("the pair again at %s: %v; want 401 invalid_client, the assertion already used", dir.second.name, got)
			}
			// A fresh assertion with the spent proof: the proof's jti.
			fresh := s.newRequest(t, "")
			fresh.proof = r.proof
			got = send(t, dir.second, fresh)
			if got.Status != http.StatusBadRequest || got.Error != "invalid_dpop_proof" || got.Description != "DPoP proof was already used (jti)" {
				t.Errorf("the proof again at %s: %v; want 400 invalid_dpop_proof, the proof already used", dir.second.name, got)
			}
		}
	})

	// The same pair sent to both instances at the same moment: exactly
	// one gets a token, for every pair.
	t.Run("RaceAcrossInstances", func(t *testing.T) {
		nonce := s.nonce(t, a)
		const pairs = 20
		for i := range pairs {
			r := s.newRequest(t, nonce)
			var answers [2]answer
			var wg sync.WaitGroup
			for j, inst := range []*instance{a, b} {
				wg.Go(func() { answers[j] = send(t, inst, r) })
			}
			wg.Wait()
			ok := 0
			for _, got := range answers {
				switch {
				case got.Status == http.StatusOK:
					ok++
				case got.Error != "invalid_client" && got.Error != "invalid_dpop_proof":
					t.Errorf("pair %d: %v; want a token or a replay refusal", i, got)
				}
			}
			if ok != 1 {
				t.Fatalf("pair %d: %d tokens (%v, %v); want exactly one", i, ok, answers[0], answers[1])
			}
		}
	})

	// A nonce one instance handed out is accepted by the other: the nonce
	// key is in the store, and both found the one the first to start
	// made.
	t.Run("NonceAcrossInstances", func(t *testing.T) {
		for _, dir := range []struct{ from, to *instance }{{a, b}, {b, a}} {
			if got := send(t, dir.to, s.newRequest(t, s.nonce(t, dir.from))); got.Status != http.StatusOK {
				t.Errorf("a nonce from %s at %s: %v", dir.from.name, dir.to.name, got)
			}
		}
	})

	// An instance reached at its own address, as a balancer that
	// rewrites the Host header reaches it, still checks the proof's htu
	// and the assertion's aud against the issuer: the request's Host
	// decides nothing.
	t.Run("HostIsNotTheIssuer", func(t *testing.T) {
		got := sendTo(t, b, "http://"+b.addr+"/connect/token", s.newRequest(t, s.nonce(t, a)))
		if got.Status != http.StatusOK {
			t.Errorf("at %s's own address: %v", b.name, got)
		}
	})

	t.Run("KeyRotation", func(t *testing.T) { testKeyRotation(t, s, a, b) })
	t.Run("RegistryChange", func(t *testing.T) { testRegistryChange(t, s, a, b) })
}

// testKeyRotation rotates the signing key with `tillit keys rotate`, then
// with --now, while both instances run. After each instance's key
// maintenance has run, both publish the same keys, and every token either
// signs verifies with a key the other publishes.
func testKeyRotation(t *testing.T, s *setup, a, b *instance) {
	clients := map[*instance]*client.Client{a: s.client(t, singleClient, a.http), b: s.client(t, singleClient, b.http)}
	// sample gets tokens from both instances and checks each against both
	// JWKSes: the kid is published by both, and the signature verifies
	// with the key each publishes. It returns the kids that signed.
	sample := func(t *testing.T) map[string]bool {
		t.Helper()
		signed := map[string]bool{}
		for range 3 {
			for _, inst := range []*instance{a, b} {
				tok, err := clients[inst].Token(t.Context(), client.TokenRequest{})
				if err != nil {
					t.Fatalf("token from %s: %v", inst.name, err)
				}
				kid := claim(t, tok.AccessToken, true, "kid")
				signed[kid] = true
				for _, other := range []*instance{a, b} {
					set := jwks(t, other)
					keys := set.Key(kid)
					if len(keys) != 1 {
						t.Fatalf("a token from %s is signed with %s, which %s does not publish", inst.name, kid, other.name)
					}
					jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
					if err == nil {
						_, err = jws.Verify(keys[0].Key)
					}
					if err != nil {
						t.Fatalf("a token from %s does not verify with %s's key %s: %v", inst.name, other.name, kid, err)
					}
				}
			}
		}
		return signed
	}
	// agree waits until both instances publish exactly want as their
	// access-token (ES256) keys. The RS256 keys of ID tokens, published
	// beside them, rotate on their own (internal/keys tests them).
	agree := func(t *testing.T, want ...string) time.Duration {
		t.Helper()
		slices.Sort(want)
		return eventually(t, 20*time.Second, "both instances publish "+strings.Join(want, ", "), func() bool {
			for _, inst := range []*instance{a, b} {
				got := kids(onlyAlg(jwks(t, inst), jose.ES256))
				slices.Sort(got)
				if !slices.Equal(got, want) {
					return false
				}
			}
			return true
		})
	}
	kidOf := regexp.MustCompile(`New signing key (\S+) `)

	first := kids(onlyAlg(jwks(t, a), jose.ES256))
	if len(first) != 1 {
		t.Fatalf("a new store publishes %v, want one key", first)
	}
	k1 := first[0]
	agree(t, k1)
	if signed := sample(t); !signed[k1] || len(signed) != 1 {
		t.Fatalf("signed with %v, want %s only", signed, k1)
	}

	// A rotation publishes the new key now and signs with it after the
	// publication lead (24 h): both publish it before either signs.
	m := kidOf.FindStringSubmatch(s.cli(t, "keys", "rotate"))
	if m == nil {
		t.Fatal("keys rotate named no key")
	}
	k2 := m[1]
	took := agree(t, k1, k2)
	t.Logf("both instances published the next key %v after keys rotate returned", took.Round(time.Millisecond))
	if signed := sample(t); !signed[k1] || len(signed) != 1 {
		t.Fatalf("after keys rotate, signed with %v, want %s only (the next key waits 24 h)", signed, k1)
	}

	// --now signs at once: each instance switches at its next key
	// reload (registry_poll). Until the other's, it may sign with a key
	// the other does not yet publish (docs/design.md, Keys); once both
	// have run, they agree again.
	m = kidOf.FindStringSubmatch(s.cli(t, "keys", "rotate", "--now"))
	if m == nil {
		t.Fatal("keys rotate --now named no key")
	}
	k3 := m[1]
	// k2 never signed: preempted by k3, it goes straight to expired_jwks.
	took = agree(t, k1, k3)
	t.Logf("both instances published the --now key %v after keys rotate --now returned", took.Round(time.Millisecond))
	eventually(t, 20*time.Second, "both instances sign with the --now key", func() bool {
		return sample(t)[k3]
	})
	if signed := sample(t); !signed[k3] || len(signed) != 1 {
		t.Fatalf("after both switched, signed with %v, want %s only", signed, k3)
	}
}

// testRegistryChange adds a delegation with `tillit delegation add` and
// removes it again: each instance applies the change within
// registry_poll (plus its reload and the probe's own request).
func testRegistryChange(t *testing.T, s *setup, a, b *instance) {
	// bound is what docs/configuration.md promises (registry_poll) plus
	// room for the reload and for the probe itself on a busy machine.
	const bound = registryPoll + time.Second
	st, err := postgres.Open(t.Context(), s.storage, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org := client.Organization{Parent: customer}
	clients := map[*instance]*client.Client{a: s.client(t, multiClient, a.http), b: s.client(t, multiClient, b.http)}
	allowed := func(inst *instance) bool {
		_, err := clients[inst].Token(t.Context(), client.TokenRequest{Organization: org})
		var ce *client.Error
		switch {
		case err == nil:
			return true
		case errors.As(err, &ce) && ce.Code == "invalid_request":
			return false
		}
		t.Fatalf("token from %s: %v", inst.name, err)
		return false
	}
	for _, inst := range []*instance{a, b} {
		if allowed(inst) {
			t.Fatalf("%s gave a token for %s without a delegation", inst.name, customer)
		}
	}
	for _, step := range []struct {
		args []string
		want bool
	}{
		{[]string{"delegation", "add", "--organisation", customer, "--supplier", supplier, "--api", audience}, true},
		{[]string{"delegation", "remove", "--organisation", customer, "--supplier", supplier}, false},
	} {
		// The change is timed from its commit, which the test sees as
		// the registry version moving (watched every 5 ms while the
		// command runs), not from the command's exit.
		before, err := st.RegistryVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		cli := make(chan struct{})
		var cliErr error
		go func() {
			defer close(cli)
			_, cliErr = s.cliErr(step.args...)
		}()
		var start time.Time
		for returned := false; start.IsZero(); {
			v, err := st.RegistryVersion(t.Context())
			switch {
			case err != nil:
				t.Fatal(err)
			case v != before:
				start = time.Now()
				continue
			case returned:
				t.Fatalf("tillit %s returned and the registry version did not move: %v", strings.Join(step.args, " "), cliErr)
			}
			select {
			case <-cli:
				returned = true // look once more
			case <-time.After(5 * time.Millisecond):
			}
		}
		// Probe both in turn, so that each is timed from the commit.
		took := map[*instance]time.Duration{}
		for len(took) < 2 {
			for _, inst := range []*instance{a, b} {
				if _, done := took[inst]; !done && allowed(inst) == step.want {
					took[inst] = time.Since(start)
				}
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("delegation %s: applied by %d of 2 instances within 10 s", step.args[1], len(took))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if <-cli; cliErr != nil {
			t.Fatal(cliErr)
		}
		for _, inst := range []*instance{a, b} {
			t.Logf("%s applied delegation %s %v after its commit", inst.name, step.args[1], took[inst].Round(time.Millisecond))
			if took[inst] > bound {
				t.Errorf("%s applied delegation %s after %v, want within %v", inst.name, step.args[1], took[inst], bound)
			}
		}
	}
}
