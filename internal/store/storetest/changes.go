package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tillit-sts/tillit/internal/store"
)

// runChanges tests WriteRecords and RecordChanges, which let a server
// apply a registry in batches and update its snapshot from what changed.
func runChanges(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("BatchIsOneVersion", func(t *testing.T) { testBatchIsOneVersion(t, open) })
	t.Run("BatchIsAllOrNothing", func(t *testing.T) { testBatchIsAllOrNothing(t, open) })
	t.Run("BatchOfCreates", func(t *testing.T) { testBatchOfCreates(t, open) })
	t.Run("BatchBounds", func(t *testing.T) { testBatchBounds(t, open) })
	t.Run("ChangesSince", func(t *testing.T) { testChangesSince(t, open) })
}

func org(number string) store.Record {
	return store.Record{Kind: store.OrganizationKind.Name, Key: number, Doc: `{"Name":"` + number + `"}`,
		Meta: store.Meta{ManagedBy: store.ManagedByFile}}
}

func registryVersion(t *testing.T, s store.Store) int64 {
	t.Helper()
	v, err := s.RegistryVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func testBatchIsOneVersion(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	old, err := s.CreateRecord(ctx, org("1"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CreateRecord(ctx, org("2"))
	if err != nil {
		t.Fatal(err)
	}
	v0 := registryVersion(t, s)
	old.Doc = `{"Name":"renamed"}`
	batch := []store.RecordWrite{
		{Op: store.OpCreate, Record: org("3")},
		{Op: store.OpUpdate, Record: old},
		{Op: store.OpDelete, Record: gone},
		{Op: store.OpCreate, Record: org("4")},
	}
	got, err := s.WriteRecords(ctx, batch)
	if err != nil {
		t.Fatalf("WriteRecords: %v", err)
	}
	if v := registryVersion(t, s); v <= v0 {
		t.Fatalf("RegistryVersion %d after a batch, was %d", v, v0)
	}
	if len(got) != len(batch) || got[0].Meta.Version != 1 || got[1].Meta.Version != 2 || got[1].Meta.ManagedBy != store.ManagedByFile {
		t.Errorf("WriteRecords returned %+v", got)
	}
	if r, err := s.Record(ctx, old.Kind, old.Key); err != nil || r.Doc != old.Doc {
		t.Errorf("updated record: %+v, %v", r, err)
	}
	if _, err := s.Record(ctx, gone.Kind, gone.Key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted record: %v, want ErrNotFound", err)
	}
	changes, v, err := s.RecordChanges(ctx, v0)
	if err != nil {
		t.Fatal(err)
	}
	if v != registryVersion(t, s) {
		t.Errorf("RecordChanges version %d, RegistryVersion %d", v, registryVersion(t, s))
	}
	var desc []string
	for _, c := range changes {
		if c.At != v {
			t.Errorf("change %+v at %d, want the batch's version %d", c, c.At, v)
		}
		desc = append(desc, fmt.Sprintf("%s:%v", c.Record.Key, c.Deleted))
	}
	if want := "[1:false 2:true 3:false 4:false]"; fmt.Sprint(desc) != want {
		t.Errorf("changes since the batch: %v, want %v", desc, want)
	}
}

func testBatchIsAllOrNothing(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := t.Context()
	for _, tt := range []struct {
		name    string
		bad     store.RecordWrite
		wantErr error
	}{
		{name: "duplicate create", bad: store.RecordWrite{Op: store.OpCreate, Record: org("1")}, wantErr: store.ErrAlreadyExists},
		{name: "stale update", bad: store.RecordWrite{Op: store.OpUpdate, Record: func() store.Record { r := org("1"); r.Meta.Version = 7; return r }()}, wantErr: store.ErrConflict},
		{name: "update of a missing record", bad: store.RecordWrite{Op: store.OpUpdate, Record: func() store.Record { r := org("9"); r.Meta.Version = 1; return r }()}, wantErr: store.ErrNotFound},
		{name: "delete of a missing record", bad: store.RecordWrite{Op: store.OpDelete, Record: org("9")}, wantErr: store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			for _, key := range []string{"0", "1"} {
				if _, err := s.CreateRecord(ctx, org(key)); err != nil {
					t.Fatal(err)
				}
			}
			v0 := registryVersion(t, s)
			_, err := s.WriteRecords(ctx, []store.RecordWrite{
				{Op: store.OpCreate, Record: org("2")},
				{Op: store.OpDelete, Record: org("0")},
				tt.bad,
			})
			var be *store.BatchError
			if !errors.As(err, &be) || be.Index != 2 || !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteRecords = %v, want a *BatchError at 2 wrapping %v", err, tt.wantErr)
			}
			if v := registryVersion(t, s); v != v0 {
				t.Errorf("RegistryVersion moved from %d to %d for a refused batch", v0, v)
			}
			if _, err := s.Record(ctx, store.OrganizationKind.Name, "2"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the batch's first create was kept: %v", err)
			}
			if _, err := s.Record(ctx, store.OrganizationKind.Name, "0"); err != nil {
				t.Errorf("the batch's delete was kept: %v", err)
			}
			if cs, _, err := s.RecordChanges(ctx, v0); err != nil || len(cs) != 0 {
				t.Errorf("changes after a refused batch: %v, %v", cs, err)
			}
		})
	}
}

// testBatchOfCreates: a batch of creates only (a first start's), which a
// backend may write in one statement, keeps every rule of a mixed batch.
func testBatchOfCreates(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := t.Context()
	creates := func(keys ...string) []store.RecordWrite {
		var out []store.RecordWrite
		for _, k := range keys {
			out = append(out, store.RecordWrite{Op: store.OpCreate, Record: org(k)})
		}
		return out
	}
	t.Run("written", func(t *testing.T) {
		s := open(t)
		// "0" was deleted before: its tombstone must go when it is made again.
		if _, err := s.CreateRecord(ctx, org("0")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRecord(ctx, store.OrganizationKind.Name, "0"); err != nil {
			t.Fatal(err)
		}
		v0 := registryVersion(t, s)
		got, err := s.WriteRecords(ctx, creates("3", "0", "1", "2"))
		if err != nil {
			t.Fatal(err)
		}
		for i, key := range []string{"3", "0", "1", "2"} {
			r := got[i]
			if r.Key != key || r.Meta.Version != 1 || r.Meta.ManagedBy != store.ManagedByFile || r.Meta.CreatedAt.IsZero() || !r.Meta.UpdatedAt.Equal(r.Meta.CreatedAt) {
				t.Errorf("record %d returned as %+v", i, r)
			}
			stored, err := s.Record(ctx, store.OrganizationKind.Name, key)
			if err != nil || stored.Doc != r.Doc || !stored.Meta.CreatedAt.Equal(r.Meta.CreatedAt) {
				t.Errorf("record %s stored as %+v (%v), returned as %+v", key, stored, err, r)
			}
		}
		changes, v, err := s.RecordChanges(ctx, v0)
		if err != nil {
			t.Fatal(err)
		}
		if v != v0+1 || len(changes) != 4 {
			t.Fatalf("after the batch: version %d (was %d), %d changes, want one version and 4 changes", v, v0, len(changes))
		}
		for _, c := range changes {
			if c.Deleted || c.At != v {
				t.Errorf("change %+v, want a record at %d", c, v)
			}
		}
	})
	for _, tt := range []struct {
		name      string
		keys      []string
		wantIndex int
	}{
		{"an existing record", []string{"5", "6", "1", "7"}, 2},
		{"the same record twice", []string{"5", "6", "7", "6"}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if _, err := s.CreateRecord(ctx, org("1")); err != nil {
				t.Fatal(err)
			}
			v0 := registryVersion(t, s)
			_, err := s.WriteRecords(ctx, creates(tt.keys...))
			var be *store.BatchError
			if !errors.As(err, &be) || be.Index != tt.wantIndex || !errors.Is(err, store.ErrAlreadyExists) {
				t.Fatalf("WriteRecords = %v, want a *BatchError at %d wrapping ErrAlreadyExists", err, tt.wantIndex)
			}
			if v := registryVersion(t, s); v != v0 {
				t.Errorf("RegistryVersion moved from %d to %d for a refused batch", v0, v)
			}
			if _, err := s.Record(ctx, store.OrganizationKind.Name, "5"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the refused batch's first create was kept: %v", err)
			}
		})
	}
}

func testBatchBounds(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	v0 := registryVersion(t, s)
	if rs, err := s.WriteRecords(ctx, nil); err != nil || len(rs) != 0 {
		t.Errorf("an empty batch: %v, %v", rs, err)
	}
	big := make([]store.RecordWrite, store.MaxWriteBatch+1)
	for i := range big {
		big[i] = store.RecordWrite{Op: store.OpCreate, Record: org(fmt.Sprint(i))}
	}
	if _, err := s.WriteRecords(ctx, big); err == nil {
		t.Error("a batch over MaxWriteBatch was written")
	}
	empty := org("")
	if _, err := s.WriteRecords(ctx, []store.RecordWrite{{Op: store.OpCreate, Record: empty}}); err == nil {
		t.Error("a record with an empty key was written")
	}
	if v := registryVersion(t, s); v != v0 {
		t.Errorf("RegistryVersion moved from %d to %d", v0, v)
	}
}

// testChangesSince writes a record after another, deletes one and makes
// it again: each read since a version returns each record once, as it is
// now, in the order of the versions.
func testChangesSince(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	at := func() int64 { return registryVersion(t, s) }
	v0 := at()
	x, err := s.CreateRecord(ctx, org("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRecord(ctx, org("y")); err != nil {
		t.Fatal(err)
	}
	v2 := at()
	x.Doc = `{"Name":"x2"}`
	if _, err := s.UpdateRecord(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRecord(ctx, x.Kind, "y"); err != nil {
		t.Fatal(err)
	}
	v4 := at()
	describe := func(since int64) string {
		t.Helper()
		cs, v, err := s.RecordChanges(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		if v != at() {
			t.Errorf("RecordChanges(%d) at version %d, store at %d", since, v, at())
		}
		var out []string
		for _, c := range cs {
			if !c.Deleted && (c.Record.Meta.Version == 0 || c.Record.Meta.CreatedAt.IsZero()) {
				t.Errorf("change %+v lacks its Meta", c)
			}
			out = append(out, fmt.Sprintf("%s=%s%v", c.Record.Key, c.Record.Doc, map[bool]string{true: " deleted"}[c.Deleted]))
		}
		return fmt.Sprint(out)
	}
	if got, want := describe(v0), `[x={"Name":"x2"} y= deleted]`; got != want {
		t.Errorf("since before both: %s, want %s", got, want)
	}
	if got, want := describe(v2), `[x={"Name":"x2"} y= deleted]`; got != want {
		t.Errorf("since both were made: %s, want %s", got, want)
	}
	if got := describe(v4); got != "[]" {
		t.Errorf("since the last write: %s, want nothing", got)
	}
	if _, err := s.CreateRecord(ctx, org("y")); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(v2), `[x={"Name":"x2"} y={"Name":"y"}]`; got != want {
		t.Errorf("after y was made again: %s, want %s", got, want)
	}
	// Before any version: everything there is, deletions included.
	if got, want := describe(-1), `[x={"Name":"x2"} y={"Name":"y"}]`; got != want {
		t.Errorf("since -1: %s, want %s", got, want)
	}
}
