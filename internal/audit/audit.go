package audit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tillit-sts/tillit/internal/store"
)

// Outcomes of a decision. Every endpoint records refusals as refused; the
// others say what was answered: a token issued (token), what an API was
// told about a token (introspection), a refresh token family revoked or a
// token not known to revoke (revocation).
const (
	OutcomeIssued       = "issued"
	OutcomeRefused      = "refused"
	OutcomeActive       = "active"
	OutcomeInactive     = "inactive"
	OutcomeRevoked      = "revoked"
	OutcomeUnknownToken = "unknown_token"
	// The outcomes of the log's own records (EndpointAudit): a chain
	// resealed after a break, and the oldest records removed for
	// retention.
	OutcomeResealed = "resealed"
	OutcomePruned   = "pruned"
	// OutcomeRefusedAggregate is the record that sums up the refusals
	// that get no record of their own (Refusals), under EndpointAggregate.
	OutcomeRefusedAggregate = "refused_aggregate"
)

// Outcomes lists every outcome, for checking a filter.
var Outcomes = []string{OutcomeIssued, OutcomeRefused, OutcomeActive, OutcomeInactive, OutcomeRevoked, OutcomeUnknownToken,
	OutcomeResealed, OutcomePruned, OutcomeRefusedAggregate}

// Key is the MAC key of the audit chains.
type Key []byte

// DeriveKey derives the audit MAC key from the key-encryption key, so that
// the key never sits in the store next to the records it protects.
func DeriveKey(kek []byte) (Key, error) {
	k, err := hkdf.Key(sha256.New, kek, nil, "tillit audit chain v1", 32)
	if err != nil {
		return nil, fmt.Errorf("audit: derive key: %w", err)
	}
	return k, nil
}

// canonical is the record as the MAC covers it: every field but the MACs,
// in a fixed order, with the time as UTC microseconds (the store's
// precision), so that a record read back from any backend gives the same
// bytes.
type canonical struct {
	Instance  string `json:"instance"`
	Seq       int64  `json:"seq"`
	Time      int64  `json:"time_us"`
	RequestID string `json:"request_id"`
	// ClientRequestID is left out when empty, so that records written
	// before it existed keep their MACs.
	ClientRequestID string   `json:"client_request_id,omitempty"`
	Endpoint        string   `json:"endpoint"`
	GrantType       string   `json:"grant_type"`
	ClientID        string   `json:"client_id"`
	OrgParent       string   `json:"orgnr_parent"`
	OrgChild        string   `json:"orgnr_child"`
	OrgSupplier     string   `json:"orgnr_supplier"`
	Subject         string   `json:"subject"`
	Audience        string   `json:"audience"`
	Scopes          []string `json:"scopes"`
	TokenID         string   `json:"token_id"`
	Outcome         string   `json:"outcome"`
	Error           string   `json:"error"`
	// Details is left out when empty, so that records written before it
	// existed keep their MACs.
	Details string `json:"details,omitempty"`
}

// MAC is the record's MAC: HMAC-SHA-256 over the previous record's MAC and
// the record's canonical form. rec.Seq and rec.Prev must be set.
func (k Key) MAC(rec *store.AuditRecord) []byte {
	c := canonical{
		Instance: rec.Instance, Seq: rec.Seq, Time: rec.Time.UnixMicro(), RequestID: rec.RequestID,
		ClientRequestID: rec.ClientRequestID,
		Endpoint:        rec.Endpoint, GrantType: rec.GrantType, ClientID: rec.ClientID,
		OrgParent: rec.OrgParent, OrgChild: rec.OrgChild, OrgSupplier: rec.OrgSupplier,
		Subject: rec.Subject, Audience: rec.Audience, Scopes: rec.Scopes, TokenID: rec.TokenID,
		Outcome: rec.Outcome, Error: rec.Error, Details: rec.Details,
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	body, err := json.Marshal(c)
	if err != nil {
		panic("audit: a record of strings and integers always marshals: " + err.Error())
	}
	m := hmac.New(sha256.New, k)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(rec.Prev)))
	m.Write(n[:])
	m.Write(rec.Prev)
	m.Write(body)
	return m.Sum(nil)
}

// Seal sets rec's place in a chain whose head is (seq, mac) and its MAC.
// Stores call it inside the transaction that appends rec, in commit order,
// and store rec as Seal leaves it.
//
// Strings that are not UTF-8 (a client chooses its client_id, the
// grant_type it sends, …) are made UTF-8 first, each invalid byte sequence
// replaced by U+FFFD. The MAC's canonical JSON would otherwise do that
// replacement itself, and the stored bytes could then be changed to other
// invalid bytes without the MAC noticing. Replacing them before the
// record is stored, rather than MACing raw bytes in a new canonical form,
// keeps every MAC already written valid, gives both backends the same
// record (PostgreSQL's text cannot hold such bytes anyway), and makes the
// MAC cover exactly what is stored: JSON is one-to-one on UTF-8 strings,
// and Verify refuses a record whose strings are not UTF-8, which only a
// change outside the store can produce.
func (k Key) Seal(rec *store.AuditRecord, headSeq int64, headMAC []byte) {
	validUTF8(rec)
	rec.Seq = headSeq + 1
	rec.Prev = headMAC
	rec.Time = rec.Time.UTC().Truncate(time.Microsecond)
	rec.MAC = k.MAC(rec)
}

// validUTF8 replaces what is not UTF-8 in rec's strings by U+FFFD.
func validUTF8(rec *store.AuditRecord) {
	for _, f := range recordStrings(rec) {
		if !utf8.ValidString(*f) {
			*f = strings.ToValidUTF8(*f, "\uFFFD")
		}
	}
	for i, sc := range rec.Scopes {
		if !utf8.ValidString(sc) {
			if i == 0 {
				rec.Scopes = slices.Clone(rec.Scopes) // not the caller's
			}
			rec.Scopes[i] = strings.ToValidUTF8(sc, "\uFFFD")
		}
	}
}

// isUTF8 reports whether every string of rec is UTF-8, as Seal leaves it.
func isUTF8(rec *store.AuditRecord) bool {
	for _, f := range recordStrings(rec) {
		if !utf8.ValidString(*f) {
			return false
		}
	}
	for _, sc := range rec.Scopes {
		if !utf8.ValidString(sc) {
			return false
		}
	}
	return true
}

// recordStrings are the string fields of rec that the MAC covers.
func recordStrings(rec *store.AuditRecord) []*string {
	return []*string{&rec.Instance, &rec.RequestID, &rec.ClientRequestID, &rec.Endpoint, &rec.GrantType, &rec.ClientID,
		&rec.OrgParent, &rec.OrgChild, &rec.OrgSupplier, &rec.Subject, &rec.Audience, &rec.TokenID,
		&rec.Outcome, &rec.Error, &rec.Details}
}
