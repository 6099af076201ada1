package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// manyClients is a registry of n clients, c-0 to c-(n-1), each with its
// own key, plus extra YAML for more clients.
func manyClients(n int, extra string) string {
	var b strings.Builder
	b.WriteString(`apis:
  - {audience: "nhn:deft", name: DEFT, scopes: [nhn:deft/api]}
organisations:
  - {number: "310900028", name: Supplier AS}
  - {number: "310900036", name: Customer AS}
client_systems:
  - {id: epj, name: EPJ, supplier: "310900028"}
clients:
`)
	for i := range n {
		fmt.Fprintf(&b, "  - {id: c-%d, name: Client %d, system: epj, organisation: \"310900036\", scopes: [nhn:deft/api], jwks: '{{jwks \"c-%d\" \"ES256\"}}'}\n", i, i, i)
	}
	b.WriteString(extra)
	return b.String()
}

// TestRegistryChangeReachesOtherInstance is the 1,000-client smoke test:
// two instances on one store; instance a restarts with a changed file,
// then a store write changes a client, as self-service will. Instance b
// must serve each change within registry_poll plus a second, while a
// flood of token requests for an unchanged client at b sees no error.
func TestRegistryChangeReachesOtherInstance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRegistryChangeReachesOtherInstance(t, "") })
	t.Run("postgres", func(t *testing.T) { testRegistryChangeReachesOtherInstance(t, pgtest.URL(t)) })
}

func testRegistryChangeReachesOtherInstance(t *testing.T, storage string) {
	const poll = 200 * time.Millisecond
	dir := t.TempDir()
	reg := manyClients(1000, "")
	a := servertest.Start(t, servertest.Options{Dir: dir, Storage: storage, Registry: reg, Settings: "instance: a"})
	b := servertest.Start(t, servertest.Options{Dir: dir, Storage: storage, Registry: reg, Clock: a.Clock,
		Settings: fmt.Sprintf("instance: b\nregistry_poll: %v", poll)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Srv.Registry().Run(ctx)

	newClient := func(s *servertest.Server, id string) *client.Client {
		c, err := client.New(client.Config{Issuer: b.URL, ClientID: id, Key: s.Key(t, id), Now: a.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	req := client.TokenRequest{Scopes: []string{"nhn:deft/api"}}

	// The flood: tokens for c-0 at b, from four clients at once.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens int
		errs   []error
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(a, "c-0")
			for ctx.Err() == nil {
				_, err := c.Token(ctx, req)
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					errs = append(errs, err)
				} else if err == nil {
					tokens++
				}
				mu.Unlock()
			}
		}()
	}

	// seen waits for b to serve a change, for at most registry_poll and a
	// second.
	seen := func(what string, ok func(*registry.Snapshot) bool) {
		t.Helper()
		deadline := time.Now().Add(poll + time.Second)
		for !ok(b.Srv.Registry().Current()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: b did not serve the change within registry_poll + 1s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// a restarts with a file that renames c-1, drops c-2 and adds c-new.
	changed := strings.Replace(manyClients(1000, `  - {id: c-new, name: New, system: epj, organisation: "310900036", scopes: [nhn:deft/api], jwks: '{{jwks "c-new" "ES256"}}'}
`), "name: Client 1,", "name: Renamed,", 1)
	changed = strings.Replace(changed, "  - {id: c-2, ", "  - {id: c-2-gone, ", 1)
	changed = strings.Replace(changed, `jwks "c-2"`, `jwks "c-2-gone"`, 1)
	// a stops first: its instance name is free once it has closed.
	a.HTTP.Close()
	a.Srv.Close()
	a2 := servertest.Start(t, servertest.Options{Dir: dir, Storage: storage, Registry: changed, Clock: a.Clock, Settings: "instance: a"})
	seen("file change", func(s *registry.Snapshot) bool {
		c1, _ := s.Client("c-1")
		c2, _ := s.Client("c-2")
		cn, ok := s.Client("c-new")
		return c1.Name == "Renamed" && c2.Status == store.StatusDisabled && ok && cn.Active()
	})
	if _, err := newClient(a2, "c-new").Token(ctx, req); err != nil {
		t.Errorf("the added client at b: %v", err)
	}
	var ce *client.Error
	if _, err := newClient(a, "c-2").Token(ctx, req); !errors.As(err, &ce) || ce.Code != "invalid_client" {
		t.Errorf("the removed client at b: %v, want invalid_client", err)
	}

	// A store write at a disables c-3.
	c3, err := store.Get(ctx, a.Store, store.ClientKind, "c-3")
	if err != nil {
		t.Fatal(err)
	}
	c3.Status = store.StatusDisabled
	if _, err := store.Update(ctx, a.Store, store.ClientKind, c3); err != nil {
		t.Fatal(err)
	}
	seen("store write", func(s *registry.Snapshot) bool {
		c, _ := s.Client("c-3")
		return !c.Active()
	})

	cancel()
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("%d of %d token requests for an unchanged client failed during the changes; first: %v", len(errs), len(errs)+tokens, errs[0])
	}
	if tokens == 0 {
		t.Error("the flood got no tokens")
	}
}
