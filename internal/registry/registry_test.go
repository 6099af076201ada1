package registry_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "tillit.db"))
}

// openStoreAt opens a store on path; several on one path are several
// processes sharing a database.
func openStoreAt(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func publicJWKS(t *testing.T, keys ...any) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// want is the registry of the demo setup, as config.Registry produces it.
func want(t *testing.T) registry.Registry {
	jwks := publicJWKS(t, ecKey(t))
	return registry.Registry{
		APIs: []store.API{
			{Audience: "nhn:deft", Name: "DEFT", Scopes: []string{"nhn:deft/api"}, Status: store.StatusActive},
			{Audience: "e-helse:sfm.api", Name: "SFM", Scopes: []string{"e-helse:sfm.api/sfm.api", "e-helse:sfm.api/sfm.api2"}, ClientClaims: []string{"sfm-id"}, Status: store.StatusActive},
		},
		Organizations: []store.Organization{
			// The child first: Sync must still create the parent before it.
			{Number: "310404047", Name: "Child", Parent: "310303038"},
			{Number: "310202029", Name: "Supplier"},
			{Number: "310303038", Name: "Customer"},
		},
		ClientSystems: []store.ClientSystem{
			{ID: "sys", Name: "EPJ", Supplier: "310202029", APIs: []string{"nhn:deft", "e-helse:sfm.api"}, Status: store.StatusActive},
		},
		Clients: []store.Client{
			{ID: "deft", System: "sys", Tenancy: store.SingleTenant, Organization: "310303038", ChildOrganizations: []string{"310404047"},
				JWKS: jwks, GrantTypes: []string{"client_credentials"}, Scopes: []string{"nhn:deft/api"}, Status: store.StatusActive},
			{ID: "sfm", System: "sys", Tenancy: store.SingleTenant, Organization: "310303038",
				JWKS: jwks, GrantTypes: []string{"client_credentials"}, Scopes: []string{"e-helse:sfm.api/sfm.api"},
				Claims: map[string]string{"e-helse:sfm.api/client/claims/sfm-id": "0c4c1b49"}, Status: store.StatusActive},
		},
	}
}

func version(t *testing.T, s store.Store) int64 {
	t.Helper()
	v, err := s.RegistryVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func refs(kind string, ids ...string) []store.Ref {
	var out []store.Ref
	for _, id := range ids {
		out = append(out, store.Ref{Kind: kind, ID: id})
	}
	return out
}

func mustSync(t *testing.T, s store.Store, w registry.Registry) registry.Report {
	t.Helper()
	rep, err := registry.Sync(t.Context(), s, w)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return rep
}

func TestSyncCreatesThenIsIdempotent(t *testing.T) {
	s := openStore(t)
	w := want(t)
	rep := mustSync(t, s, w)
	if got, wantN := len(rep.Created), 2+3+1+2; got != wantN || len(rep.Updated)+len(rep.Disabled)+len(rep.Kept) != 0 {
		t.Fatalf("first Sync report: %v", rep)
	}
	parent := slices.Index(rep.Created, store.Ref{Kind: store.OrganizationKind.Name, ID: "310303038"})
	child := slices.Index(rep.Created, store.Ref{Kind: store.OrganizationKind.Name, ID: "310404047"})
	if parent < 0 || child < parent {
		t.Errorf("child organisation created before its parent: %v", rep.Created)
	}
	c, err := store.Get(t.Context(), s, store.ClientKind, "sfm")
	if err != nil {
		t.Fatal(err)
	}
	if c.ManagedBy != store.ManagedByFile || c.Claims["e-helse:sfm.api/client/claims/sfm-id"] != "0c4c1b49" {
		t.Errorf("stored client = %+v", c)
	}

	v := version(t, s)
	rep = mustSync(t, s, w)
	if rep.Changed() || len(rep.Kept) != 0 {
		t.Errorf("second Sync changed %v", rep)
	}
	if got := version(t, s); got != v {
		t.Errorf("RegistryVersion moved from %d to %d on an unchanged Sync", v, got)
	}

	// Order of set-like lists is not a change.
	w.APIs[1].Scopes = []string{"e-helse:sfm.api/sfm.api2", "e-helse:sfm.api/sfm.api"}
	w.ClientSystems[0].APIs = []string{"e-helse:sfm.api", "nhn:deft"}
	w.Clients[1].Claims = map[string]string{"e-helse:sfm.api/client/claims/sfm-id": "0c4c1b49"}
	if rep := mustSync(t, s, w); rep.Changed() {
		t.Errorf("reordered lists changed %v", rep)
	}
	if got := version(t, s); got != v {
		t.Errorf("RegistryVersion moved from %d to %d on reordered lists", v, got)
	}
	if rep.String() != "no changes" {
		t.Errorf("Report.String() = %q", rep.String())
	}
}

func TestSyncUpdatesDisablesAndRestores(t *testing.T) {
	s := openStore(t)
	w := want(t)
	mustSync(t, s, w)

	w.Clients[0].Name = "DEFT client"
	w.APIs[0].AllowBearer = true
	rep := mustSync(t, s, w)
	if !slices.Equal(rep.Updated, append(refs(store.APIKind.Name, "nhn:deft"), refs(store.ClientKind.Name, "deft")...)) || len(rep.Created)+len(rep.Disabled) != 0 {
		t.Fatalf("update report: %v", rep)
	}
	if c, _ := store.Get(t.Context(), s, store.ClientKind, "deft"); c.Name != "DEFT client" || c.Version != 2 {
		t.Errorf("updated client = %+v", c)
	}

	// Drop a client, its API's scopes from the other client, the API and
	// an organisation from the file.
	removed := w
	removed.Clients = w.Clients[1:]
	removed.APIs = w.APIs[1:]
	removed.ClientSystems = []store.ClientSystem{w.ClientSystems[0]}
	removed.ClientSystems[0].APIs = []string{"e-helse:sfm.api"}
	removed.Organizations = w.Organizations[1:]
	removed.Clients = slices.Clone(removed.Clients)
	rep = mustSync(t, s, removed)
	wantDisabled := append(refs(store.ClientKind.Name, "deft"), refs(store.APIKind.Name, "nhn:deft")...)
	if !slices.Equal(rep.Disabled, wantDisabled) || !slices.Equal(rep.Kept, refs(store.OrganizationKind.Name, "310404047")) {
		t.Fatalf("removal report: %v", rep)
	}
	c, err := store.Get(t.Context(), s, store.ClientKind, "deft")
	if err != nil {
		t.Fatalf("a removed client must be kept, disabled: %v", err)
	}
	if c.Status != store.StatusDisabled || c.ManagedBy != store.ManagedByFile {
		t.Errorf("removed client = %+v, want disabled and still file-managed", c)
	}
	if _, err := store.Get(t.Context(), s, store.OrganizationKind, "310404047"); err != nil {
		t.Errorf("removed organisation: %v, want it kept", err)
	}

	// Disabling is idempotent too.
	v := version(t, s)
	if rep = mustSync(t, s, removed); rep.Changed() {
		t.Errorf("second removal Sync changed %v", rep)
	}
	if got := version(t, s); got != v {
		t.Errorf("RegistryVersion moved on a repeated removal")
	}

	// Back in the file: enabled again.
	rep = mustSync(t, s, w)
	if len(rep.Updated) != 3 || len(rep.Created) != 0 {
		t.Fatalf("restore report: %v", rep)
	}
	if c, _ := store.Get(t.Context(), s, store.ClientKind, "deft"); c.Status != store.StatusActive {
		t.Errorf("restored client status = %q", c.Status)
	}
}

func TestSyncLeavesOtherRecordsAlone(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	w := want(t)
	mustSync(t, s, w)
	cli := store.Client{ID: "made-by-cli", System: "sys", Tenancy: store.MultiTenant, JWKS: w.Clients[0].JWKS,
		Scopes: []string{"nhn:deft/api"}, GrantTypes: []string{"client_credentials"}, Status: store.StatusActive}
	if _, err := store.Create(ctx, s, store.ClientKind, cli); err != nil {
		t.Fatal(err)
	}

	// Not in the file: never disabled.
	if rep := mustSync(t, s, w); rep.Changed() {
		t.Errorf("Sync changed %v", rep)
	}
	if c, _ := store.Get(ctx, s, store.ClientKind, "made-by-cli"); c.Status != store.StatusActive || c.ManagedBy != "" {
		t.Errorf("CLI client = %+v, want untouched", c)
	}

	// Declared by the file: refused, and nothing at all is written.
	v := version(t, s)
	taken := w
	taken.Clients = append(slices.Clone(w.Clients), cli)
	taken.Clients[0].Name = "would be an update"
	rep, err := registry.Sync(ctx, s, taken)
	if !errors.Is(err, registry.ErrNotFileManaged) || !strings.Contains(err.Error(), `client "made-by-cli"`) {
		t.Fatalf("Sync error = %v, want ErrNotFileManaged naming the client", err)
	}
	if rep.Changed() || version(t, s) != v {
		t.Errorf("a refused Sync wrote %v", rep)
	}
}

func TestSyncRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*registry.Registry)
		wantErr string
	}{
		{name: "duplicate client", edit: func(r *registry.Registry) { r.Clients = append(r.Clients, r.Clients[0]) }, wantErr: `registry: client "deft" declared twice`},
		{name: "duplicate api", edit: func(r *registry.Registry) { r.APIs = append(r.APIs, r.APIs[0]) }, wantErr: `registry: api "nhn:deft" declared twice`},
		{name: "client without id", edit: func(r *registry.Registry) { r.Clients[0].ID = "" }, wantErr: "registry: client 0 has no id"},
		{name: "organisation without number", edit: func(r *registry.Registry) { r.Organizations[1].Number = "" }, wantErr: "registry: organisation 1 has no id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			w := want(t)
			tt.edit(&w)
			rep, err := registry.Sync(t.Context(), s, w)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Sync error = %v, want %q", err, tt.wantErr)
			}
			if rep.Changed() || version(t, s) != 0 {
				t.Errorf("Sync wrote %v before refusing", rep)
			}
		})
	}
}

// TestSyncConcurrent starts several instances on one database at once, as
// a cluster restart does: every Sync succeeds and each record is created
// exactly once.
func TestSyncConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tillit.db")
	w := want(t)
	const instances = 8
	var wg sync.WaitGroup
	reports := make([]registry.Report, instances)
	errs := make([]error, instances)
	stores := make([]store.Store, instances)
	for i := range instances {
		s := openStoreAt(t, path)
		stores[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = registry.Sync(t.Context(), s, w)
		}()
	}
	wg.Wait()
	created := 0
	for i := range instances {
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
		}
		created += len(reports[i].Created)
		if len(reports[i].Updated)+len(reports[i].Disabled) != 0 {
			t.Errorf("instance %d changed more than it created: %v", i, reports[i])
		}
	}
	if created != 8 {
		t.Errorf("%d records created in all, want 8", created)
	}

	// The same again with a changed file: updates race on Version, and
	// the losers re-read and find nothing left to do.
	w.Clients[0].Name = "renamed"
	w.APIs[1].ClientClaims = nil
	for i := range instances {
		s := stores[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = registry.Sync(t.Context(), s, w)
		}()
	}
	wg.Wait()
	updated := 0
	for i := range instances {
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
		}
		updated += len(reports[i].Updated)
	}
	if updated != 2 {
		t.Errorf("%d records updated in all, want 2", updated)
	}
}

func TestSnapshot(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	w := want(t)
	mustSync(t, s, w)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Client{
		{ID: "bad-keys", System: "sys", Tenancy: store.MultiTenant, JWKS: publicJWKS(t, &small.PublicKey), Status: store.StatusActive},
		{ID: "no-keys", System: "sys", Tenancy: store.MultiTenant, Status: store.StatusActive},
		{ID: "orphan", System: "gone", Tenancy: store.MultiTenant, JWKS: w.Clients[0].JWKS, Status: store.StatusActive},
		{ID: "pending", System: "sys", Tenancy: store.MultiTenant, JWKS: w.Clients[0].JWKS, Status: store.StatusPending},
		{ID: "hs256-id-tokens", System: "sys", Tenancy: store.MultiTenant, JWKS: w.Clients[0].JWKS, Status: store.StatusActive,
			GrantTypes: []string{"authorization_code"}, IDTokenSignedResponseAlg: "HS256"},
		{ID: "es384-id-tokens", System: "sys", Tenancy: store.MultiTenant, JWKS: w.Clients[0].JWKS, Status: store.StatusActive,
			GrantTypes: []string{"authorization_code"}, IDTokenSignedResponseAlg: "ES384"},
		{ID: "ps256-machine", System: "sys", Tenancy: store.MultiTenant, JWKS: w.Clients[0].JWKS, Status: store.StatusActive,
			GrantTypes: []string{"client_credentials"}, IDTokenSignedResponseAlg: "PS256"},
	} {
		if _, err := store.Create(ctx, s, store.ClientKind, c); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != version(t, s) {
		t.Errorf("Version() = %d, store has %d", snap.Version(), version(t, s))
	}

	c, ok := snap.Client("deft")
	if !ok || c.Err() != nil || !c.Active() || c.System == nil || c.System.ID != "sys" || len(c.Keys()) != 1 {
		t.Fatalf("Client(deft) = %+v, %v", c, ok)
	}
	thumb, _ := jws.Thumbprint(&c.Keys()[0])
	if c.Keys()[0].KeyID != thumb {
		t.Errorf("a key without kid got kid %q, want its thumbprint %q", c.Keys()[0].KeyID, thumb)
	}

	tests := []struct {
		id         string
		wantErr    string
		wantActive bool
	}{
		{id: "bad-keys", wantErr: "RSA key of 1024 bits is shorter than 2048"},
		{id: "no-keys", wantErr: "no public keys registered"},
		{id: "orphan", wantErr: `client system "gone" does not exist`},
		{id: "pending"},
		{id: "hs256-id-tokens", wantErr: `id_token_signed_response_alg "HS256" is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512`},
		{id: "es384-id-tokens", wantActive: true},
		{id: "ps256-machine", wantActive: true},
	}
	for _, tt := range tests {
		c, ok := snap.Client(tt.id)
		switch {
		case !ok:
			t.Errorf("Client(%s) missing: a broken client must be kept", tt.id)
		case tt.wantErr == "" && c.Err() != nil:
			t.Errorf("Client(%s).Err = %v", tt.id, c.Err())
		case tt.wantErr != "" && (c.Err() == nil || !strings.Contains(c.Err().Error(), tt.wantErr)):
			t.Errorf("Client(%s).Err = %v, want %q", tt.id, c.Err(), tt.wantErr)
		case c.Active() != tt.wantActive:
			t.Errorf("Client(%s).Active() = %v", tt.id, c.Active())
		}
	}
	if _, ok := snap.Client("nobody"); ok {
		t.Error("Client(nobody) found")
	}
	// Only a login client's choice counts, and only an allowed one; a
	// client that chose nothing (as every record written before the field
	// existed) gets RS256.
	if got := snap.IDTokenAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.ES384}) {
		t.Errorf("IDTokenAlgorithms() = %v, want [ES384]", got)
	}
	if c, _ := snap.Client("deft"); c.IDTokenAlgorithm() != jose.RS256 {
		t.Errorf("deft IDTokenAlgorithm() = %s, want the default RS256", c.IDTokenAlgorithm())
	}
	if c, _ := snap.Client("es384-id-tokens"); c.IDTokenAlgorithm() != jose.ES384 {
		t.Errorf("IDTokenAlgorithm() = %s, want ES384", c.IDTokenAlgorithm())
	}

	if a, ok := snap.APIForScope("e-helse:sfm.api/sfm.api2"); !ok || a.Audience != "e-helse:sfm.api" {
		t.Errorf("APIForScope = %v, %v", a, ok)
	}
	if _, ok := snap.APIForScope("openid"); ok {
		t.Error("APIForScope(openid) found an API")
	}
	if a, ok := snap.API("nhn:deft"); !ok || a.Scopes[0] != "nhn:deft/api" {
		t.Errorf("API(nhn:deft) = %v, %v", a, ok)
	}
	var auds []string
	for _, a := range snap.APIs() {
		auds = append(auds, a.Audience)
	}
	if !slices.Equal(auds, []string{"e-helse:sfm.api", "nhn:deft"}) {
		t.Errorf("APIs() = %v, want sorted by audience", auds)
	}
	if o, ok := snap.Organization("310404047"); !ok || o.Parent != "310303038" {
		t.Errorf("Organisation = %v, %v", o, ok)
	}
	if sys, ok := snap.ClientSystem("sys"); !ok || sys.Supplier != "310202029" {
		t.Errorf("ClientSystem = %v, %v", sys, ok)
	}

	// A disabled client system disables its clients.
	w.ClientSystems[0].Status = store.StatusDisabled
	mustSync(t, s, w)
	snap, err = registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := snap.Client("deft"); c.Active() {
		t.Error("client of a disabled client system is active")
	}
}

// TestSnapshotScopeClaimedTwice covers records made outside the file, which
// nothing stops from declaring the same scope: every instance must pick the
// same API, the one whose audience prefixes the scope.
func TestSnapshotScopeClaimedTwice(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	for _, a := range []store.API{
		{Audience: "a:first", Scopes: []string{"z:api/read"}, Status: store.StatusActive},
		{Audience: "z:api", Scopes: []string{"z:api/read"}, Status: store.StatusActive},
		{Audience: "m:other", Scopes: []string{"z:api/read"}, Status: store.StatusActive},
	} {
		if _, err := store.Create(ctx, s, store.APIKind, a); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := registry.Load(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := snap.APIForScope("z:api/read"); a.Audience != "z:api" {
		t.Errorf("APIForScope = %s, want z:api", a.Audience)
	}
}

func TestWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tillit.db")
	s := openStoreAt(t, path)
	ctx := t.Context()
	mustSync(t, s, want(t))
	var logs lockedBuffer
	w, err := registry.NewWatcher(ctx, s, 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Log = slog.New(slog.NewTextHandler(&logs, nil))
	first := w.Current()

	// Refresh with nothing changed keeps the same snapshot.
	if snap, err := w.Refresh(ctx); err != nil || snap != first {
		t.Fatalf("Refresh() = %p, %v; want the same snapshot %p", snap, err, first)
	}

	// A change by another process (another Store on the same file) is
	// picked up by Run within a few intervals.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(runCtx); close(done) }()
	other := openStoreAt(t, path)
	if _, err := store.Create(ctx, other, store.OrganizationKind, store.Organization{Number: "313231593", Name: "New"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := w.Current().Organization("313231593"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the change within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if first.Version() == w.Current().Version() {
		t.Error("new snapshot has the old version")
	}
	if _, ok := first.Organization("313231593"); ok {
		t.Error("the old snapshot changed: snapshots must be immutable")
	}
	stop()
	<-done

	// With the store gone, the last snapshot stays and the failure is
	// logged.
	cur := w.Current()
	s.Close()
	if snap, err := w.Refresh(ctx); err == nil || snap != cur {
		t.Fatalf("Refresh() on a closed store = %p, %v; want the previous snapshot and an error", snap, err)
	}
	runCtx, stop = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() { w.Run(runCtx); close(done) }()
	for !strings.Contains(logs.String(), "registry reload failed") {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("no failure logged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	if w.Current() != cur {
		t.Error("a failed reload replaced the snapshot")
	}
}

// lockedBuffer is written by the Watcher's goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNewWatcherRefusesBadInterval(t *testing.T) {
	if _, err := registry.NewWatcher(t.Context(), openStore(t), 0, nil); err == nil {
		t.Fatal("NewWatcher with interval 0 succeeded")
	}
}
