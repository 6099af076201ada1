package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Record is a registry record as the backends keep it: every kind in one
// table told apart by Kind, keyed by Key, with Meta in columns and the rest
// of the record as a JSON document. Backends never look inside Doc, so a
// new kind needs nothing from them.
type Record struct {
	Kind string
	Key  string
	// Doc is the record as a JSON object without its Meta (Kind.Document).
	Doc  string
	Meta Meta
}

// Kind declares one kind of registry record, once, for everything that
// handles records of every kind: the backends store it by Name and Key,
// registry.Sync applies the file's records of it, and the conformance
// suite tests it. The typed functions Create, Update, Get, List and Delete
// read and write it.
//
// A field added to a record later is absent from older documents and
// decodes as its zero value: no migration. A renamed field would silently
// lose its old values, so a rename keeps the old JSON name in a tag (as
// Client.Organization does) or needs a migration of the documents.
type Kind[T any] struct {
	// Name is the kind column of the stored records (so it never changes)
	// and names the kind in errors and reports.
	Name string
	// Key is the record's key within its kind. The empty key is refused.
	Key  func(*T) string
	Meta func(*T) *Meta

	// Status, when the kind has one, is what registry.Sync disables when
	// the file no longer declares a file-managed record. Records of a kind
	// without a status are left as they are.
	Status func(*T) *Status
	// Canonical puts a copy of a record, its Meta already zeroed, in the
	// form registry.Sync compares: lists that are sets sorted, empty lists
	// and maps nil, JSON compacted. It must not modify what the copy
	// shares with the original (clone before sorting). Nil: compared as is.
	Canonical func(*T)
	// Label names a record in messages and reports when its Key is not fit
	// for people. Nil: the Key.
	Label func(*T) string

	// fields is how Document writes T without going through a map, made
	// on first use; nil when T has a field it cannot write that way.
	fields     []docField
	fieldsOnce sync.Once
}

// docField is one top-level member of a document: its JSON name, quoted,
// and where it is in the record.
type docField struct {
	key   string
	name  []byte
	index []int
	// omitEmpty leaves the member out when it is empty, as the omitempty
	// option does.
	omitEmpty bool
}

// label is how messages name rec.
func (k *Kind[T]) label(rec *T) string {
	if k.Label != nil {
		return k.Label(rec)
	}
	return k.Key(rec)
}

// Ref names one registry record of any kind in messages and reports.
type Ref struct {
	Kind string
	ID   string
}

func (r Ref) String() string { return fmt.Sprintf("%s %q", r.Kind, r.ID) }

// Ref names rec.
func (k *Kind[T]) Ref(rec *T) Ref { return Ref{Kind: k.Name, ID: k.label(rec)} }

// Canon returns a copy of rec without its Meta in the form Canonical
// gives, for comparing a declared record with a stored one.
func (k *Kind[T]) Canon(rec T) T {
	*k.Meta(&rec) = Meta{}
	if k.Canonical != nil {
		k.Canonical(&rec)
	}
	return rec
}

// Create stores a new record of kind k and returns it with the Meta the
// store gave it. It fails with ErrAlreadyExists.
func Create[T any](ctx context.Context, s Store, k *Kind[T], rec T) (T, error) {
	r, err := k.Record(rec)
	if err != nil {
		var zero T
		return zero, err
	}
	stored, err := s.CreateRecord(ctx, r)
	if err != nil {
		var zero T
		return zero, err
	}
	*k.Meta(&rec) = stored.Meta
	return rec, nil
}

// Update replaces a record of kind k, which must carry the Version it
// read, and returns it with its new Meta. It fails with ErrNotFound, and
// with ErrConflict when the Version is not the stored one.
func Update[T any](ctx context.Context, s Store, k *Kind[T], rec T) (T, error) {
	r, err := k.Record(rec)
	if err != nil {
		var zero T
		return zero, err
	}
	stored, err := s.UpdateRecord(ctx, r)
	if err != nil {
		var zero T
		return zero, err
	}
	*k.Meta(&rec) = stored.Meta
	return rec, nil
}

// Get reads the record of kind k with key. It fails with ErrNotFound.
func Get[T any](ctx context.Context, s Store, k *Kind[T], key string) (T, error) {
	r, err := s.Record(ctx, k.Name, key)
	if err != nil {
		var zero T
		return zero, err
	}
	return k.Decode(r.Doc, r.Meta)
}

// List reads every record of kind k, ordered by key in byte order.
func List[T any](ctx context.Context, s Store, k *Kind[T]) ([]T, error) {
	rs, err := s.Records(ctx, k.Name)
	if err != nil {
		return nil, err
	}
	recs := make([]T, len(rs))
	for i, r := range rs {
		if recs[i], err = k.Decode(r.Doc, r.Meta); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// Delete removes the record of kind k with key. It fails with ErrNotFound.
func Delete[T any](ctx context.Context, s Store, k *Kind[T], key string) error {
	return s.DeleteRecord(ctx, k.Name, key)
}

// Record is rec as the backends keep it, for WriteRecords.
func (k *Kind[T]) Record(rec T) (Record, error) {
	doc, err := k.Document(rec)
	if err != nil {
		return Record{}, err
	}
	return Record{Kind: k.Name, Key: k.Key(&rec), Doc: doc, Meta: *k.Meta(&rec)}, nil
}

// metaFields are the JSON names of Meta's fields. Meta is embedded in every
// record, so they are at the document's top level.
var metaFields = func() []string {
	var names []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Meta]()) {
		names = append(names, f.Name)
	}
	return names
}()

// Document is rec as a JSON object without its Meta, which backends keep in
// columns. Its members are in byte order of their names, as encoding/json
// writes a map: the form every stored document has.
func (k *Kind[T]) Document(rec T) (string, error) {
	*k.Meta(&rec) = Meta{}
	k.fieldsOnce.Do(func() { k.fields = docFields(reflect.TypeFor[T]()) })
	if k.fields == nil {
		return k.mapDocument(rec)
	}
	// Each member encoded on its own gives the bytes it has inside the
	// whole record; writing them in name order saves decoding the record
	// into a map and encoding that, which was most of the cost of writing
	// a large registry.
	v := reflect.ValueOf(&rec).Elem()
	b := make([]byte, 0, 256)
	b = append(b, '{')
	for _, f := range k.fields {
		fv := v.FieldByIndex(f.index)
		if f.omitEmpty && isEmpty(fv) {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		val, err := json.Marshal(fv.Interface())
		if err != nil {
			return "", fmt.Errorf("store: encode %s: %w", k.Name, err)
		}
		b = append(append(append(b, f.name...), ':'), val...)
	}
	return string(append(b, '}')), nil
}

// mapDocument is Document by way of a map.
func (k *Kind[T]) mapDocument(rec T) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("store: encode %s: %w", k.Name, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return "", fmt.Errorf("store: encode %s: %w", k.Name, err)
	}
	for _, f := range metaFields {
		delete(fields, f)
	}
	if b, err = json.Marshal(fields); err != nil {
		return "", fmt.Errorf("store: encode %s: %w", k.Name, err)
	}
	return string(b), nil
}

// isEmpty is what the omitempty option leaves out.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// docFields lists the members of t's document sorted by name, or returns
// nil when t has something that encoding/json would not write as a plain
// member (an option other than omitempty, an embedded struct other than
// Meta, a method of its own), for which Document falls back to the map.
func docFields(t reflect.Type) []docField {
	if t.Kind() != reflect.Struct || t.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Marshaler]()) {
		return nil
	}
	var fields []docField
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			if f.Type == reflect.TypeFor[Meta]() {
				continue
			}
			return nil
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		omitEmpty := opts == "omitempty"
		if opts != "" && !omitEmpty {
			return nil
		}
		if name == "" {
			name = f.Name
		}
		quoted, err := json.Marshal(name)
		if err != nil {
			return nil
		}
		fields = append(fields, docField{key: name, name: quoted, index: f.Index, omitEmpty: omitEmpty})
	}
	slices.SortFunc(fields, func(a, b docField) int { return strings.Compare(a.key, b.key) })
	return fields
}

// Decode reads a document that Document wrote, with meta as its Meta.
func (k *Kind[T]) Decode(doc string, meta Meta) (T, error) {
	var rec T
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		return rec, fmt.Errorf("store: decode %s: %w", k.Name, err)
	}
	*k.Meta(&rec) = meta
	return rec, nil
}

// sortSet makes a set-like list comparable: sorted, nil when empty. It
// sorts a clone, since the list may be shared with the caller's record.
func sortSet(s *[]string) {
	if len(*s) == 0 {
		*s = nil
		return
	}
	*s = slices.Sorted(slices.Values(*s))
}

// compactJSON makes JSON comparable: without white space, nil when empty.
func compactJSON(b *[]byte) {
	if len(*b) == 0 {
		*b = nil
		return
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, *b); err == nil {
		*b = buf.Bytes()
	}
}
