package server_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestKeysReloadAtRegistryPoll: a key that another process rotates in with
// --now (what `tillit keys rotate --now` does) is published and signs
// within registry_poll, not at the server's next key maintenance, which
// is a minute away.
func TestKeysReloadAtRegistryPoll(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Settings: "registry_poll: 20ms"})
	_, cancel, done := serve(t, s)
	defer func() {
		cancel()
		<-done
	}()
	ctx := t.Context()
	// servertest leaves server.Options.KeyMaintenance at its default, a
	// minute: only the reload can make the switch within the test.
	first := kidsOf(t, s.URL)
	if len(first) != 1 {
		t.Fatalf("a new server publishes %v", first)
	}

	// Another process: its own manager on the same store.
	kek, err := keys.ReadKEKFile(filepath.Join(s.Dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.NewManager(ctx, s.Store, sealer, keys.Config{Algorithm: jose.RS256, PublishLead: 24 * time.Hour, RotationPeriod: 90 * 24 * time.Hour, ExpiredRetention: 90 * 24 * time.Hour}, s.Clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := other.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	signer := func() string {
		sg, err := s.Srv.Keys().Signer()
		if err != nil {
			t.Fatal(err)
		}
		return sg.KeyID()
	}
	for !slices.Contains(kidsOf(t, s.URL), k.ID) || signer() != k.ID {
		if time.Now().After(deadline) {
			t.Fatalf("the server publishes %v and signs with %s, 20 s after %s was rotated in with --now", kidsOf(t, s.URL), signer(), k.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func kidsOf(t *testing.T, base string) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, base+"/.well-known/openid-configuration/jwks", &set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}
