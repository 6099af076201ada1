package registry_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// twoStores opens two Stores on one database, as two instances have.
var twoStores = []struct {
	name string
	open func(t *testing.T) (a, b store.Store)
}{
	{"sqlite", func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "tillit.db")
		return openStoreAt(t, path), openStoreAt(t, path)
	}},
	{"postgres", func(t *testing.T) (store.Store, store.Store) {
		url := pgtest.URL(t)
		open := func() store.Store {
			s, err := postgres.Open(t.Context(), url, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open()
	}},
}

// manyClients is want with n clients, each with its own key.
func manyClients(t *testing.T, n int) registry.Registry {
	w := want(t)
	base := w.Clients[0]
	w.Clients = nil
	for i := range n {
		c := base
		c.ID = fmt.Sprintf("c-%d", i)
		c.JWKS = publicJWKS(t, ecKey(t))
		w.Clients = append(w.Clients, c)
	}
	return w
}

// TestChangesReachAnotherInstance applies a registry of 1,000 clients at
// instance a and changes it there in every way the file and a store write
// can: b's watcher must see each change on its next poll, and must patch
// its snapshot rather than rebuild it (the clients that did not change
// keep their objects).
func TestChangesReachAnotherInstance(t *testing.T) {
	for _, tt := range twoStores {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			a, b := tt.open(t)
			w := manyClients(t, 1000)
			rep := mustSync(t, a, w)
			if len(rep.Created) != 1000+2+3+1 {
				t.Fatalf("created %d records", len(rep.Created))
			}
			if s := rep.String(); len(s) > 400 || !strings.Contains(s, "1000 client") || !strings.Contains(s, "and 1001 more") {
				t.Errorf("report %q: want a summary with counts per kind and a few names", s)
			}
			// 1,006 records in batches of at most 500 per kind: a version
			// per batch, not per record.
			if v := version(t, a); v > 10 {
				t.Errorf("RegistryVersion after the first Sync = %d, want one bump per batch", v)
			}
			wb, err := registry.NewWatcher(ctx, b, time.Hour, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := wb.Current()
			untouched, _ := before.Client("c-500")

			refresh := func(what string, wantChanges int) *registry.Snapshot {
				t.Helper()
				cs, _, err := b.RecordChanges(ctx, wb.Current().Version())
				if err != nil {
					t.Fatal(err)
				}
				if len(cs) != wantChanges {
					t.Errorf("%s: %d records changed since b's snapshot, want %d", what, len(cs), wantChanges)
				}
				snap, err := wb.Refresh(ctx)
				if err != nil {
					t.Fatalf("%s: Refresh: %v", what, err)
				}
				if c, _ := snap.Client("c-500"); c != untouched {
					t.Fatalf("%s: an unchanged client was rebuilt", what)
				}
				return snap
			}

			// The file changes one client (a restart of a).
			w.Clients[1].Name = "renamed"
			mustSync(t, a, w)
			snap := refresh("file change", 1)
			if c, _ := snap.Client("c-1"); c.Name != "renamed" || !c.Active() {
				t.Errorf("after the file change b has %+v", c.Client)
			}
			if c, _ := before.Client("c-1"); c.Name == "renamed" {
				t.Error("the old snapshot changed: snapshots must be immutable")
			}

			// The file drops one client and adds another.
			added := manyClients(t, 1).Clients[0]
			added.ID = "new"
			w.Clients = append(w.Clients[:2], w.Clients[3:]...)
			w.Clients = append(w.Clients, added)
			mustSync(t, a, w)
			snap = refresh("removed and added", 2)
			if c, ok := snap.Client("c-2"); !ok || c.Status != store.StatusDisabled || c.Active() {
				t.Errorf("the removed client at b: %v, %+v; want it disabled", ok, c)
			}
			if c, ok := snap.Client("new"); !ok || !c.Active() || len(c.Keys()) != 1 {
				t.Errorf("the added client at b: %v, %+v", ok, c)
			}

			// A store write, as self-service makes: a new key.
			c3, err := store.Get(ctx, a, store.ClientKind, "c-3")
			if err != nil {
				t.Fatal(err)
			}
			c3.JWKS = publicJWKS(t, ecKey(t))
			if _, err := store.Update(ctx, a, store.ClientKind, c3); err != nil {
				t.Fatal(err)
			}
			old, _ := snap.Client("c-3")
			snap = refresh("store write", 1)
			if c, _ := snap.Client("c-3"); c.Keys()[0].KeyID == old.Keys()[0].KeyID {
				t.Error("b still has c-3's old key")
			}

			// A deletion leaves a tombstone that b applies.
			if err := store.Delete(ctx, a, store.ClientKind, "c-4"); err != nil {
				t.Fatal(err)
			}
			snap = refresh("delete", 1)
			if _, ok := snap.Client("c-4"); ok {
				t.Error("b still has the deleted client")
			}

			// A client system change reaches its clients without parsing
			// their keys again.
			sys := w.ClientSystems[0]
			sys.Status = store.StatusDisabled
			w.ClientSystems[0] = sys
			mustSync(t, a, w)
			cs, _, err := b.RecordChanges(ctx, snap.Version())
			// The system, and c-3 and c-4, which the file puts back.
			if err != nil || len(cs) != 3 {
				t.Fatalf("changes after the system change: %d, %v", len(cs), err)
			}
			prev, _ := snap.Client("c-500")
			if snap, err = wb.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			c, _ := snap.Client("c-500")
			if c.Active() || c.System.Status != store.StatusDisabled || &c.Keys()[0] != &prev.Keys()[0] {
				t.Errorf("after the system change c-500 is active %v, system %+v, keys shared %v", c.Active(), c.System, &c.Keys()[0] == &prev.Keys()[0])
			}

			// b ends where a fresh load ends.
			fresh, err := registry.Load(ctx, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fresh.Version() != snap.Version() {
				t.Errorf("b at version %d, a fresh load at %d", snap.Version(), fresh.Version())
			}
			for _, id := range []string{"c-0", "c-1", "c-2", "c-3", "c-4", "new", "c-999"} {
				f, fok := fresh.Client(id)
				p, pok := snap.Client(id)
				if fok != pok || fok && (f.Name != p.Name || f.Status != p.Status || f.Active() != p.Active() || string(f.JWKS) != string(p.JWKS)) {
					t.Errorf("client %s: patched %v %+v, fresh %v %+v", id, pok, p, fok, f)
				}
			}
		})
	}
}

// TestWatcherSyncFromStaleSnapshot: Watcher.Sync plans from its snapshot,
// which another process may have overtaken; the records it wrote since
// must be read again, not overwritten blindly or reported as errors.
func TestWatcherSyncFromStaleSnapshot(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tillit.db")
	s, other := openStoreAt(t, path), openStoreAt(t, path)
	w0 := want(t)
	mustSync(t, s, w0)
	wt, err := registry.NewWatcher(ctx, s, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Behind the snapshot's back: deft is updated, and "new" is created
	// as the file would.
	deft, err := store.Get(ctx, other, store.ClientKind, "deft")
	if err != nil {
		t.Fatal(err)
	}
	deft.Name = "by another instance"
	if _, err := store.Update(ctx, other, store.ClientKind, deft); err != nil {
		t.Fatal(err)
	}
	added := w0.Clients[1]
	added.ID, added.Name = "new", "first"
	added.Meta = store.Meta{ManagedBy: store.ManagedByFile}
	if _, err := store.Create(ctx, other, store.ClientKind, added); err != nil {
		t.Fatal(err)
	}

	w1 := want(t)
	w1.Clients[0].Name = "from the file"
	added.Name, added.Meta = "from the file", store.Meta{}
	w1.Clients = append(w1.Clients, added)
	rep, err := wt.Sync(ctx, w1)
	if err != nil {
		t.Fatalf("Sync from a stale snapshot: %v", err)
	}
	if len(rep.Updated) != 3 {
		t.Errorf("report %v: want deft, sfm (its new key) and new updated", rep)
	}
	snap := wt.Current()
	for _, id := range []string{"deft", "new"} {
		if c, ok := snap.Client(id); !ok || c.Name != "from the file" {
			t.Errorf("client %s in the snapshot after Sync: %v %+v", id, ok, c)
		}
		if c, err := store.Get(ctx, other, store.ClientKind, id); err != nil || c.Name != "from the file" {
			t.Errorf("client %s in the store after Sync: %v %+v", id, err, c)
		}
	}
	if v := version(t, s); snap.Version() != v {
		t.Errorf("snapshot at version %d, store at %d", snap.Version(), v)
	}
}

// TestWatcherSyncAfterAnotherInstance: two instances start with one file
// on an empty store; the second loads its snapshot before the first has
// written, so its Sync writes nothing, and its snapshot must still hold
// what the first wrote when Sync returns.
func TestWatcherSyncAfterAnotherInstance(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tillit.db")
	s, other := openStoreAt(t, path), openStoreAt(t, path)
	wt, err := registry.NewWatcher(ctx, s, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := want(t)
	mustSync(t, other, w)
	rep, err := wt.Sync(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed() {
		t.Errorf("the second Sync changed %v", rep)
	}
	if c, ok := wt.Current().Client("deft"); !ok || !c.Active() {
		t.Errorf("after Sync the snapshot has deft: %v %+v", ok, c)
	}
}

func TestReportString(t *testing.T) {
	client := func(id string) store.Ref { return store.Ref{Kind: "client", ID: id} }
	many := make([]store.Ref, 0, 1000)
	for i := range 1000 {
		many = append(many, client(fmt.Sprint(i)))
	}
	for _, tt := range []struct {
		name string
		rep  registry.Report
		want string
	}{
		{name: "nothing", want: "no changes"},
		{name: "one", rep: registry.Report{Updated: []store.Ref{client("a")}}, want: `updated 1 (1 client): client "a"`},
		{name: "kinds and verbs", rep: registry.Report{
			Created:  []store.Ref{{Kind: "api", ID: "nhn:deft"}, client("a"), client("b")},
			Disabled: []store.Ref{client("c")},
			Kept:     []store.Ref{{Kind: "organisation", ID: "994598759"}},
		}, want: `created 3 (1 api, 2 client): api "nhn:deft", client "a", client "b"; disabled 1 (1 client): client "c"; kept 1 (1 organisation): organisation "994598759"`},
		{name: "many", rep: registry.Report{Created: many},
			want: `created 1000 (1000 client): client "0", client "1", client "2", client "3", client "4" and 995 more`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rep.String(); got != tt.want {
				t.Errorf("String() = %q\nwant        %q", got, tt.want)
			}
		})
	}
}

// TestPatchKeepsIndexes: what the snapshot derives from many records (the
// count of login clients, HPR entries by pid) comes out of a patch as a
// fresh load makes it.
func TestPatchKeepsIndexes(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	w := want(t)
	w.Clients[0].GrantTypes = append(w.Clients[0].GrantTypes, "authorization_code")
	mustSync(t, s, w)
	wt, err := registry.NewWatcher(ctx, s, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		snap, err := wt.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := registry.Load(ctx, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if snap.LoginClients() != fresh.LoginClients() {
			t.Errorf("%s: %d login clients, a fresh load has %d", what, snap.LoginClients(), fresh.LoginClients())
		}
		for _, pid := range []string{"p1", "p2"} {
			got, gok := snap.HealthPersonnelByPID(pid)
			want, wok := fresh.HealthPersonnelByPID(pid)
			if gok != wok || gok && got.Number != want.Number {
				t.Errorf("%s: HPR of %s %v %+v, a fresh load has %v %+v", what, pid, gok, got, wok, want)
			}
		}
	}
	if n := wt.Current().LoginClients(); n != 1 {
		t.Fatalf("%d login clients at the start, want 1", n)
	}

	sfm, err := store.Get(ctx, s, store.ClientKind, "sfm")
	if err != nil {
		t.Fatal(err)
	}
	sfm.GrantTypes = append(sfm.GrantTypes, "authorization_code")
	if _, err := store.Update(ctx, s, store.ClientKind, sfm); err != nil {
		t.Fatal(err)
	}
	for _, h := range []store.HealthPersonnel{
		{Number: "9", PID: "p1", Status: store.StatusActive},
		{Number: "3", PID: "p1", Status: store.StatusActive},
		{Number: "5", PID: "p2", Status: store.StatusActive},
	} {
		if _, err := store.Create(ctx, s, store.HealthPersonnelKind, h); err != nil {
			t.Fatal(err)
		}
	}
	check("a login client and HPR entries added")

	sys, err := store.Get(ctx, s, store.ClientSystemKind, "sys")
	if err != nil {
		t.Fatal(err)
	}
	sys.Status = store.StatusDisabled
	if _, err := store.Update(ctx, s, store.ClientSystemKind, sys); err != nil {
		t.Fatal(err)
	}
	h3, err := store.Get(ctx, s, store.HealthPersonnelKind, "3")
	if err != nil {
		t.Fatal(err)
	}
	h3.Status = store.StatusDisabled
	if _, err := store.Update(ctx, s, store.HealthPersonnelKind, h3); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, s, store.HealthPersonnelKind, "5"); err != nil {
		t.Fatal(err)
	}
	check("the system disabled, HPR entries disabled and deleted")
	if n := wt.Current().LoginClients(); n != 0 {
		t.Errorf("%d login clients with their system disabled", n)
	}
	if h, _ := wt.Current().HealthPersonnelByPID("p1"); h == nil || h.Number != "9" {
		t.Errorf("p1's HPR entry after 3 was disabled: %+v", h)
	}
}

// TestWatcherSyncKeepsWhatItWrote: with no other writer, Watcher.Sync
// brings its snapshot up to date from the records it wrote rather than
// reading them back. The snapshot must be what a fresh Load reads, record
// for record, after a first apply (batches), a change, and a removal
// (the disable path).
func TestWatcherSyncKeepsWhatItWrote(t *testing.T) {
	for _, tt := range twoStores {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s, _ := tt.open(t)
			wt, err := registry.NewWatcher(ctx, s, time.Hour, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := manyClients(t, 1200)
			steps := []struct {
				name   string
				change func()
			}{
				{"first apply", func() {}},
				{"one client renamed", func() { w.Clients[7].Name = "renamed" }},
				{"one client dropped", func() { w.Clients = w.Clients[1:] }},
			}
			for _, step := range steps {
				step.change()
				if _, err := wt.Sync(ctx, w); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				got := wt.Current()
				fresh, err := registry.Load(ctx, s, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got.Version() != fresh.Version() {
					t.Fatalf("%s: snapshot at version %d, the store at %d", step.name, got.Version(), fresh.Version())
				}
				for i := range 1200 {
					id := fmt.Sprintf("c-%d", i)
					g, _ := got.Client(id)
					f, _ := fresh.Client(id)
					if g == nil || f == nil || !reflect.DeepEqual(g.Client, f.Client) || g.Active() != f.Active() {
						t.Fatalf("%s: client %s in the snapshot %+v, as loaded %+v", step.name, id, g, f)
					}
				}
			}
			if c, _ := wt.Current().Client("c-0"); c.Status != store.StatusDisabled {
				t.Errorf("the dropped client is %s, want disabled", c.Status)
			}
		})
	}
}
