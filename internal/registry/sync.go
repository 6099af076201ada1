package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/tillit-sts/tillit/internal/parallel"
	"github.com/tillit-sts/tillit/internal/store"
)

// ErrNotFileManaged reports a record the file declares that already exists
// in the store without being file-managed (it was made by the CLI or the
// API). Sync refuses to take it over: the operator must either remove it
// from the file or delete the store's record.
var ErrNotFileManaged = errors.New("registry: exists in the store and is not managed by the file")

// maxAttempts bounds how often Sync re-reads a record that another process
// changed between Sync's read and its write (two instances starting with the
// same file is the usual case; the second then finds nothing to do).
const maxAttempts = 3

// batchSize is how many records Sync writes in one transaction: few
// enough that a batch holds the store's write lock only briefly.
const batchSize = 500

// Sync makes the store match want for the records the file manages, and
// reports what it changed. The store stays the source of truth; the file is
// applied to it at every start:
//
//   - A declared record that is missing is created with ManagedBy
//     store.ManagedByFile.
//   - A declared file-managed record that differs is updated; one that is
//     equal is not written, so a second Sync with the same want writes
//     nothing and RegistryVersion does not move. Records compare in the
//     form of their kind's Canonical: lists that are sets (scopes, grant
//     types, ...) without regard to order.
//   - A file-managed record that want no longer declares is disabled
//     (Status store.StatusDisabled), never deleted, so that audit records
//     keep their references. Records of a kind without a status
//     (organisations) are left alone (Report.Kept). Delegations are disabled like clients: one that
//     stayed active would still let a supplier act for the organisation.
//   - Records with an empty ManagedBy (made by the CLI or the API) are never
//     touched. If want declares one of their IDs, Sync returns an error
//     wrapping ErrNotFileManaged for each and writes nothing.
//
// Sync writes in batches of up to batchSize records, each one transaction
// that moves RegistryVersion once. It is not one transaction: a store
// error part way leaves the batches written so far, and the next Sync
// finishes the job. An empty Status in want means active.
func Sync(ctx context.Context, s store.Store, want Registry) (Report, error) {
	return syncFrom(ctx, s, want, nil)
}

// syncFrom is Sync taking the stored records from snapshot from, when it
// is not nil, instead of reading them. A record written since the
// snapshot makes its batch fail with ErrConflict or ErrAlreadyExists, and
// is then read again, as with any record another process writes meanwhile.
func syncFrom(ctx context.Context, s store.Store, want Registry, from *Snapshot) (Report, error) {
	var rep Report
	kinds := want.kinds()

	// Read and check everything before the first write, so that a refused
	// takeover or a duplicate leaves the store as it was.
	var errs []error
	for _, k := range kinds {
		errs = append(errs, k.plan(ctx, s, from)...)
	}
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}

	// Create and update in reference order (parents, APIs and systems
	// before what names them) in case a backend checks references; disable
	// in the opposite order.
	for _, k := range kinds {
		if err := k.apply(ctx, s, &rep); err != nil {
			return rep, err
		}
	}
	for _, k := range slices.Backward(kinds) {
		if err := k.retire(ctx, s, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// syncer is a fileKind of any record type.
type syncer interface {
	plan(ctx context.Context, s store.Store, from *Snapshot) []error
	apply(ctx context.Context, s store.Store, rep *Report) error
	retire(ctx context.Context, s store.Store, rep *Report) error
}

// fileKind is what Sync does for one kind: the file's records of it, and
// the stored ones by key once plan has read them.
type fileKind[T any] struct {
	k    *store.Kind[T]
	want []T
	have map[string]T
	// order, when set, reorders want for apply; messages keep the file's
	// order.
	order func([]T) []T
}

func declare[T any](k *store.Kind[T], want []T) *fileKind[T] { return &fileKind[T]{k: k, want: want} }

// applyIn makes apply write the records in the order order gives them.
func (f *fileKind[T]) applyIn(order func([]T) []T) *fileKind[T] {
	f.order = order
	return f
}

// plan reads the stored records of this kind, from the snapshot from if it
// is not nil, and checks want against them.
func (f *fileKind[T]) plan(ctx context.Context, s store.Store, from *Snapshot) []error {
	k := f.k
	var errs []error
	seen := make(map[string]bool, len(f.want))
	for i := range f.want {
		key := k.Key(&f.want[i])
		switch {
		case key == "":
			errs = append(errs, fmt.Errorf("registry: %s %d has no id", k.Name, i))
		case seen[key]:
			errs = append(errs, fmt.Errorf("registry: %s declared twice", k.Ref(&f.want[i])))
		}
		seen[key] = true
	}
	stored, ok := snapshotRecords(from, k)
	if !ok {
		var err error
		if stored, err = store.List(ctx, s, k); err != nil {
			return append(errs, fmt.Errorf("registry: list %s records: %w", k.Name, err))
		}
	}
	f.have = make(map[string]T, len(stored))
	for i := range stored {
		f.have[k.Key(&stored[i])] = stored[i]
	}
	for i := range f.want {
		if h, ok := f.have[k.Key(&f.want[i])]; ok && k.Meta(&h).ManagedBy != store.ManagedByFile {
			errs = append(errs, fmt.Errorf("%s: %w", k.Ref(&f.want[i]), ErrNotFileManaged))
		}
	}
	return errs
}

// apply creates or updates every record of want, batchSize records to a
// transaction. A batch that meets a record another process wrote since
// plan read it was not written at all; its records are then written one
// by one, each read again and decided afresh.
func (f *fileKind[T]) apply(ctx context.Context, s store.Store, rep *Report) error {
	want := f.want
	if f.order != nil {
		want = f.order(want)
	}
	k := f.k
	var (
		batch []store.RecordWrite
		recs  []T
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		written, err := s.WriteRecords(ctx, batch)
		switch {
		case err == nil:
			wrote(rep, k, written, recs)
			for i := range recs {
				if ref := k.Ref(&recs[i]); batch[i].Op == store.OpCreate {
					rep.Created = append(rep.Created, ref)
				} else {
					rep.Updated = append(rep.Updated, ref)
				}
			}
		case errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			for _, w := range recs {
				h, exists := f.have[k.Key(&w)]
				if err := f.put(ctx, s, w, h, exists, rep); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("registry: write %s records: %w", k.Name, err)
		}
		batch, recs = batch[:0], recs[:0]
		return nil
	}
	for _, w := range want {
		if k.Status != nil && *k.Status(&w) == "" {
			*k.Status(&w) = store.StatusActive
		}
		h, exists := f.have[k.Key(&w)]
		var op store.RecordOp
		switch {
		case !exists:
			op = store.OpCreate
			*k.Meta(&w) = store.Meta{ManagedBy: store.ManagedByFile}
		case k.Meta(&h).ManagedBy != store.ManagedByFile:
			return fmt.Errorf("%s: %w", k.Ref(&w), ErrNotFileManaged)
		case reflect.DeepEqual(k.Canon(w), k.Canon(h)):
			continue
		default:
			op = store.OpUpdate
			*k.Meta(&w) = *k.Meta(&h)
		}
		batch = append(batch, store.RecordWrite{Op: op})
		recs = append(recs, w)
		if len(batch) == batchSize {
			if err := encode(k, batch, recs); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := encode(k, batch, recs); err != nil {
		return err
	}
	return flush()
}

// encode makes the stored form of recs into batch's records, on every
// core: at a first start it is a tenth of the work.
func encode[T any](k *store.Kind[T], batch []store.RecordWrite, recs []T) error {
	return parallel.For(len(batch), 64, func(i int) error {
		var err error
		batch[i].Record, err = k.Record(recs[i])
		return err
	})
}

func (f *fileKind[T]) put(ctx context.Context, s store.Store, w, h T, exists bool, rep *Report) error {
	k := f.k
	ref := k.Ref(&w)
	for attempt := 1; ; attempt++ {
		var err error
		if !exists {
			*k.Meta(&w) = store.Meta{ManagedBy: store.ManagedByFile}
			var created T
			if created, err = store.Create(ctx, s, k, w); err == nil {
				rep.Created = append(rep.Created, ref)
				return wroteOne(rep, k, created)
			}
			if !errors.Is(err, store.ErrAlreadyExists) || attempt == maxAttempts {
				return fmt.Errorf("registry: create %s: %w", ref, err)
			}
		} else {
			if k.Meta(&h).ManagedBy != store.ManagedByFile {
				// Made by someone else since plan read it.
				return fmt.Errorf("%s: %w", ref, ErrNotFileManaged)
			}
			if reflect.DeepEqual(k.Canon(w), k.Canon(h)) {
				return nil
			}
			*k.Meta(&w) = *k.Meta(&h)
			var updated T
			if updated, err = store.Update(ctx, s, k, w); err == nil {
				rep.Updated = append(rep.Updated, ref)
				return wroteOne(rep, k, updated)
			}
			if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) || attempt == maxAttempts {
				return fmt.Errorf("registry: update %s: %w", ref, err)
			}
		}
		// Another process wrote this record between our read and our
		// write: read it again and decide afresh.
		h, err = store.Get(ctx, s, k, k.Key(&w))
		switch {
		case err == nil:
			exists = true
		case errors.Is(err, store.ErrNotFound):
			exists = false
		default:
			return fmt.Errorf("registry: read %s: %w", ref, err)
		}
	}
}

// retire disables the file-managed records that want no longer declares.
func (f *fileKind[T]) retire(ctx context.Context, s store.Store, rep *Report) error {
	k := f.k
	declared := make(map[string]bool, len(f.want))
	for i := range f.want {
		declared[k.Key(&f.want[i])] = true
	}
	var (
		batch    []store.RecordWrite
		recs     []T // as they were
		disabled []T // as they are written
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		written, err := s.WriteRecords(ctx, batch)
		switch {
		case err == nil:
			wrote(rep, k, written, disabled)
			for i := range recs {
				rep.Disabled = append(rep.Disabled, k.Ref(&recs[i]))
			}
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			for _, h := range recs {
				if err := f.disable(ctx, s, h, rep); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("registry: disable %s records: %w", k.Name, err)
		}
		batch, recs, disabled = batch[:0], recs[:0], disabled[:0]
		return nil
	}
	// Sorted: a stable report and write order.
	for _, key := range slices.Sorted(maps.Keys(f.have)) {
		h := f.have[key]
		if declared[key] || k.Meta(&h).ManagedBy != store.ManagedByFile {
			continue
		}
		if k.Status == nil {
			rep.Kept = append(rep.Kept, k.Ref(&h))
			continue
		}
		if *k.Status(&h) == store.StatusDisabled {
			continue
		}
		d := h
		*k.Status(&d) = store.StatusDisabled
		r, err := k.Record(d)
		if err != nil {
			return err
		}
		batch = append(batch, store.RecordWrite{Op: store.OpUpdate, Record: r})
		recs = append(recs, h)
		disabled = append(disabled, d)
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (f *fileKind[T]) disable(ctx context.Context, s store.Store, h T, rep *Report) error {
	k := f.k
	ref, key := k.Ref(&h), k.Key(&h)
	for attempt := 1; ; attempt++ {
		if k.Meta(&h).ManagedBy != store.ManagedByFile || *k.Status(&h) == store.StatusDisabled {
			return nil
		}
		*k.Status(&h) = store.StatusDisabled
		updated, err := store.Update(ctx, s, k, h)
		switch {
		case err == nil:
			rep.Disabled = append(rep.Disabled, ref)
			return wroteOne(rep, k, updated)
		case errors.Is(err, store.ErrNotFound):
			return nil // deleted meanwhile: nothing left to disable
		case !errors.Is(err, store.ErrConflict) || attempt == maxAttempts:
			return fmt.Errorf("registry: disable %s: %w", ref, err)
		}
		h, err = store.Get(ctx, s, k, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("registry: read %s: %w", ref, err)
		}
	}
}

// parentsFirst orders organisations so that a parent declared in the same
// list comes before its sub-units. Cycles (refused by config validation)
// keep their order.
func parentsFirst(orgs []store.Organization) []store.Organization {
	index := make(map[string]int, len(orgs))
	for i, o := range orgs {
		index[o.Number] = i
	}
	depth := func(i int) int {
		d := 0
		for seen := map[int]bool{i: true}; ; d++ {
			p, ok := index[orgs[i].Parent]
			if !ok || seen[p] {
				return d
			}
			seen[p] = true
			i = p
		}
	}
	out := slices.Clone(orgs)
	depths := make(map[string]int, len(orgs))
	for i, o := range orgs {
		depths[o.Number] = depth(i)
	}
	slices.SortStableFunc(out, func(a, b store.Organization) int { return depths[a.Number] - depths[b.Number] })
	return out
}

// snapshotRecords are the records of kind k in snap, as the store holds
// them. It reports false when snap is nil or does not hold the kind
// (persons, which only a login reads).
func snapshotRecords[T any](snap *Snapshot, k *store.Kind[T]) ([]T, bool) {
	if snap == nil {
		return nil, false
	}
	var out []T
	add := func(rec any) { out = append(out, rec.(T)) }
	switch any(k) {
	case any(store.APIKind):
		for _, r := range snap.byAud {
			add(*r)
		}
	case any(store.OrganizationKind):
		for _, r := range snap.orgs {
			add(*r)
		}
	case any(store.ClientSystemKind):
		for _, r := range snap.systems {
			add(*r)
		}
	case any(store.ClientKind):
		for _, r := range snap.clients {
			add(r.Client)
		}
	case any(store.DelegationKind):
		for _, bySupplier := range snap.delegations {
			for _, r := range bySupplier {
				add(*r)
			}
		}
	case any(store.IdentityProviderKind):
		for _, r := range snap.idps {
			add(*r)
		}
	case any(store.HealthPersonnelKind):
		for _, r := range snap.hpr {
			add(*r)
		}
	default:
		return nil, false
	}
	return out, true
}
