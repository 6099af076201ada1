package store

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Kind describes one kind of registry record to the backends, which keep
// every kind in one table told apart by Name, keyed by Key, with the
// record's Meta in columns and the rest as a JSON document (Document). A
// field added to a record later is then absent from older documents and
// decodes as its zero value: no migration. A renamed field would silently
// lose its old values, so a rename needs a migration of the documents.
type Kind[T any] struct {
	Name string // the kind column; also names the kind in errors
	Key  func(*T) string
	Meta func(*T) *Meta
}

// The registry's kinds.
var (
	APIKind = Kind[API]{Name: "api",
		Key:  func(r *API) string { return r.Audience },
		Meta: func(r *API) *Meta { return &r.Meta }}
	OrganizationKind = Kind[Organization]{Name: "organisation",
		Key:  func(r *Organization) string { return r.Number },
		Meta: func(r *Organization) *Meta { return &r.Meta }}
	ClientSystemKind = Kind[ClientSystem]{Name: "client system",
		Key:  func(r *ClientSystem) string { return r.ID },
		Meta: func(r *ClientSystem) *Meta { return &r.Meta }}
	ClientKind = Kind[Client]{Name: "client",
		Key:  func(r *Client) string { return r.ID },
		Meta: func(r *Client) *Meta { return &r.Meta }}
	DelegationKind = Kind[Delegation]{Name: "delegation",
		Key:  func(r *Delegation) string { return DelegationKey(r.Organization, r.Supplier) },
		Meta: func(r *Delegation) *Meta { return &r.Meta }}
)

// DelegationKey is the registry key of a delegation: organisation, a tab,
// supplier. The tab sorts below every printable character, so the byte
// order of keys is by organisation, then supplier. No organisation gives the
// empty key, which backends refuse to create.
func DelegationKey(organization, supplier string) string {
	if organization == "" {
		return ""
	}
	return organization + "\t" + supplier
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
// columns.
func (k Kind[T]) Document(rec T) (string, error) {
	*k.Meta(&rec) = Meta{}
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

// Record reads a document that Document wrote, with meta as its Meta.
func (k Kind[T]) Record(doc string, meta Meta) (T, error) {
	var rec T
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		return rec, fmt.Errorf("store: decode %s: %w", k.Name, err)
	}
	*k.Meta(&rec) = meta
	return rec, nil
}
