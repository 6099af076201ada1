package helseid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Names of the structured claim in a client assertion (profile §2.3, §6.2).
// HelseID prefers assertion_details and still accepts the legacy
// authorization_details, but never both in one assertion. Request objects
// carry authorization_details.
const (
	ClaimAssertionDetails     = "assertion_details"
	ClaimAuthorizationDetails = "authorization_details"
)

// Values of the "type" member of a structured entry (profile §6.2).
const (
	DetailTypeAuthorization    = "helseid_authorization"
	DetailTypeSFMJournalID     = "nhn:sfm:journal-id"
	DetailTypeTillitsrammeverk = "nhn:tillitsrammeverk:parameters"
)

// Identifier systems and type of an organisation in helseid_authorization.
// SystemEnhetsregisteret names a single-tenant client's child organisation
// by its bare number; SystemISO6523 names a multi-tenant client's parent and
// optional child as "NO:ORGNR:<parent>:<child>".
const (
	SystemEnhetsregisteret = "urn:oid:2.16.578.1.12.4.1.4.101"
	SystemISO6523          = "urn:oid:1.0.6523"
	IdentifierTypeENH      = "ENH"
)

// orgNrPrefix starts an ISO 6523 value for a Norwegian organisation number.
const orgNrPrefix = "NO:ORGNR:"

// Detail is one entry of assertion_details or authorization_details: a JSON
// object whose "type" member says what it is. AuthorizationDetail,
// JournalIDDetail and RawDetail implement it; each marshals to its wire form
// with the type first, as NHN's libraries write it.
type Detail interface {
	// DetailType is the value of the entry's "type" member.
	DetailType() string
}

// AuthorizationDetail is a helseid_authorization entry: the organisation a
// client acts for.
type AuthorizationDetail struct {
	PractitionerRole PractitionerRole `json:"practitioner_role"`
}

// PractitionerRole holds the organisation of a helseid_authorization entry.
type PractitionerRole struct {
	Organization OrganizationRef `json:"organization"`
}

// OrganizationRef points at an organisation by identifier.
type OrganizationRef struct {
	Identifier Identifier `json:"identifier"`
}

// Identifier is an organisation identifier: System is SystemEnhetsregisteret
// or SystemISO6523, Type is IdentifierTypeENH.
type Identifier struct {
	System string `json:"system"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

// DetailType returns DetailTypeAuthorization.
func (*AuthorizationDetail) DetailType() string { return DetailTypeAuthorization }

// The wire form writes "type" first; the alias type drops the methods so
// that marshalling does not recurse.
type authorizationWire struct {
	Type string `json:"type"`
	authorizationFields
}

type authorizationFields AuthorizationDetail

// MarshalJSON writes the entry with its type.
func (d *AuthorizationDetail) MarshalJSON() ([]byte, error) {
	return json.Marshal(authorizationWire{Type: DetailTypeAuthorization, authorizationFields: authorizationFields(*d)})
}

// UnmarshalJSON reads the entry and refuses any other type.
func (d *AuthorizationDetail) UnmarshalJSON(b []byte) error {
	if err := d.decode(b); err != nil {
		return fmt.Errorf("helseid: %w", err)
	}
	return nil
}

func (d *AuthorizationDetail) decode(b []byte) error {
	var w authorizationWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%s: %w", DetailTypeAuthorization, err)
	}
	if w.Type != DetailTypeAuthorization {
		return fmt.Errorf("entry of type %q is not %s", w.Type, DetailTypeAuthorization)
	}
	*d = AuthorizationDetail(w.authorizationFields)
	return nil
}

// NewChildOrganization returns the entry with which a single-tenant client
// names one of its child organisations (underenhet); the parent is implicit
// in the client. child must be a valid organisation number.
func NewChildOrganization(child string) (*AuthorizationDetail, error) {
	if !ValidOrgNumber(child) {
		return nil, fmt.Errorf("helseid: child organisation %q is not a valid organisation number", child)
	}
	return newAuthorization(SystemEnhetsregisteret, child), nil
}

// NewMultiTenantOrganization returns the entry with which a multi-tenant
// client names the organisation it acts for, and optionally a child of it.
// Without a child the value ends in a colon ("NO:ORGNR:<parent>:"), as NHN's
// .NET library writes it.
func NewMultiTenantOrganization(parent, child string) (*AuthorizationDetail, error) {
	if !ValidOrgNumber(parent) {
		return nil, fmt.Errorf("helseid: parent organisation %q is not a valid organisation number", parent)
	}
	if child != "" && !ValidOrgNumber(child) {
		return nil, fmt.Errorf("helseid: child organisation %q is not a valid organisation number", child)
	}
	return newAuthorization(SystemISO6523, orgNrPrefix+parent+":"+child), nil
}

func newAuthorization(system, value string) *AuthorizationDetail {
	return &AuthorizationDetail{PractitionerRole: PractitionerRole{Organization: OrganizationRef{
		Identifier: Identifier{System: system, Type: IdentifierTypeENH, Value: value},
	}}}
}

// OrgNumbers reads the organisation numbers an entry names. For
// SystemEnhetsregisteret the value is a child and parent is empty; for
// SystemISO6523 it is "NO:ORGNR:<parent>", "NO:ORGNR:<parent>:" or
// "NO:ORGNR:<parent>:<child>" (NHN's .NET library writes the trailing colon,
// KS's client leaves it out). The numbers are returned as written: whether
// they are valid organisation numbers is for the caller to decide, since the
// answer to a bad number (HID-1004) differs from a bad structure (HID-1007).
func (d *AuthorizationDetail) OrgNumbers() (parent, child string, err error) {
	id := d.PractitionerRole.Organization.Identifier
	if id.Type != IdentifierTypeENH {
		return "", "", fmt.Errorf("helseid: organisation identifier type %q is not %q", id.Type, IdentifierTypeENH)
	}
	switch id.System {
	case SystemEnhetsregisteret:
		if id.Value == "" {
			return "", "", errors.New("helseid: organisation identifier has no value")
		}
		return "", id.Value, nil
	case SystemISO6523:
		rest, ok := strings.CutPrefix(id.Value, orgNrPrefix)
		if !ok {
			return "", "", fmt.Errorf("helseid: organisation identifier value does not start with %q", orgNrPrefix)
		}
		parent, child, _ = strings.Cut(rest, ":")
		if parent == "" {
			return "", "", errors.New("helseid: organisation identifier names no parent")
		}
		if strings.Contains(child, ":") {
			return "", "", errors.New("helseid: organisation identifier has more than parent and child")
		}
		return parent, child, nil
	}
	return "", "", fmt.Errorf("helseid: unknown organisation identifier system %q", id.System)
}

// JournalIDDetail is an nhn:sfm:journal-id entry: the patient journal a
// request concerns, for Sentral forskrivningsmodul. The token gets it as the
// claim ClaimSFMJournalID.
type JournalIDDetail struct {
	JournalID string
}

// DetailType returns DetailTypeSFMJournalID.
func (*JournalIDDetail) DetailType() string { return DetailTypeSFMJournalID }

// The type uses a hyphen, the member an underscore (profile §6.2).
type journalIDWire struct {
	Type  string `json:"type"`
	Value struct {
		JournalID string `json:"journal_id"`
	} `json:"value"`
}

// MarshalJSON writes {"type":"nhn:sfm:journal-id","value":{"journal_id":…}}.
func (d *JournalIDDetail) MarshalJSON() ([]byte, error) {
	w := journalIDWire{Type: DetailTypeSFMJournalID}
	w.Value.JournalID = d.JournalID
	return json.Marshal(w)
}

// UnmarshalJSON reads the entry and refuses any other type.
func (d *JournalIDDetail) UnmarshalJSON(b []byte) error {
	if err := d.decode(b); err != nil {
		return fmt.Errorf("helseid: %w", err)
	}
	return nil
}

func (d *JournalIDDetail) decode(b []byte) error {
	var w journalIDWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%s: %w", DetailTypeSFMJournalID, err)
	}
	if w.Type != DetailTypeSFMJournalID {
		return fmt.Errorf("entry of type %q is not %s", w.Type, DetailTypeSFMJournalID)
	}
	d.JournalID = w.Value.JournalID
	return nil
}

// NewSFMJournalID returns the entry for an SFM journal id, which must be a
// UUID (8-4-4-4-12 hexadecimal digits).
func NewSFMJournalID(journalID string) (*JournalIDDetail, error) {
	if !IsUUID(journalID) {
		return nil, fmt.Errorf("helseid: SFM journal id %q is not a UUID", journalID)
	}
	return &JournalIDDetail{JournalID: journalID}, nil
}

// IsUUID reports whether s is a UUID in its canonical text form,
// 8-4-4-4-12 hexadecimal digits of either case. Version and variant are not
// checked: SFM asks for a UUID, not for a particular version.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// RawDetail is an entry of any other type (Tillitsrammeverk parameters, or
// a type this package does not know), kept as the JSON object it is.
type RawDetail struct {
	Type string
	// JSON is the whole entry, "type" included.
	JSON json.RawMessage
}

// DetailType returns the entry's type.
func (d *RawDetail) DetailType() string { return d.Type }

// MarshalJSON writes the entry as it is.
func (d *RawDetail) MarshalJSON() ([]byte, error) { return d.JSON, nil }

// NewRawDetail wraps a JSON object that has a non-empty string "type".
func NewRawDetail(entry json.RawMessage) (*RawDetail, error) {
	d, err := rawDetail(entry)
	if err != nil {
		return nil, fmt.Errorf("helseid: %w", err)
	}
	return d, nil
}

func rawDetail(entry json.RawMessage) (*RawDetail, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if !isObject(entry) {
		return nil, errors.New("entry is not a JSON object")
	}
	if err := json.Unmarshal(entry, &head); err != nil {
		return nil, fmt.Errorf("entry: %w", err)
	}
	if head.Type == nil || *head.Type == "" {
		return nil, errors.New("entry has no type")
	}
	return &RawDetail{Type: *head.Type, JSON: append(json.RawMessage(nil), bytes.TrimSpace(entry)...)}, nil
}

// MarshalDetails renders entries as the value of assertion_details: the bare
// object for one entry and an array for several, as NHN's .NET and Java
// libraries do. No entries is an error, because an empty claim says nothing
// and NHN's Java library refuses it too.
func MarshalDetails(entries []Detail) (json.RawMessage, error) {
	switch len(entries) {
	case 0:
		return nil, errors.New("helseid: no assertion details")
	case 1:
		if entries[0] == nil {
			return nil, errors.New("helseid: nil assertion detail")
		}
		b, err := json.Marshal(entries[0])
		if err != nil {
			return nil, fmt.Errorf("helseid: %w", err)
		}
		return b, nil
	}
	for _, e := range entries {
		if e == nil {
			return nil, errors.New("helseid: nil assertion detail")
		}
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("helseid: %w", err)
	}
	return b, nil
}

// ParseDetails reads the value of assertion_details or
// authorization_details: one object or an array of objects. Known types
// become *AuthorizationDetail and *JournalIDDetail, everything else
// *RawDetail. Members the shapes do not define are ignored.
func ParseDetails(raw json.RawMessage) ([]Detail, error) {
	raw = bytes.TrimSpace(raw)
	var entries []json.RawMessage
	switch {
	case isObject(raw):
		entries = []json.RawMessage{raw}
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, fmt.Errorf("helseid: assertion details: %w", err)
		}
		if len(entries) == 0 {
			return nil, errors.New("helseid: assertion details is an empty array")
		}
	default:
		return nil, errors.New("helseid: assertion details is neither an object nor an array")
	}
	out := make([]Detail, 0, len(entries))
	for i, e := range entries {
		rd, err := rawDetail(e)
		if err != nil {
			return nil, fmt.Errorf("helseid: assertion details entry %d: %w", i, err)
		}
		switch rd.Type {
		case DetailTypeAuthorization:
			d := new(AuthorizationDetail)
			err = d.decode(e)
			out = append(out, d)
		case DetailTypeSFMJournalID:
			d := new(JournalIDDetail)
			err = d.decode(e)
			out = append(out, d)
		default:
			out = append(out, rd)
		}
		if err != nil {
			return nil, fmt.Errorf("helseid: assertion details entry %d: %w", i, err)
		}
	}
	return out, nil
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}
