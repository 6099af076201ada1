package audit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

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
)

// Outcomes lists every outcome, for checking a filter.
var Outcomes = []string{OutcomeIssued, OutcomeRefused, OutcomeActive, OutcomeInactive, OutcomeRevoked, OutcomeUnknownToken}

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
	Instance    string   `json:"instance"`
	Seq         int64    `json:"seq"`
	Time        int64    `json:"time_us"`
	RequestID   string   `json:"request_id"`
	Endpoint    string   `json:"endpoint"`
	GrantType   string   `json:"grant_type"`
	ClientID    string   `json:"client_id"`
	OrgParent   string   `json:"orgnr_parent"`
	OrgChild    string   `json:"orgnr_child"`
	OrgSupplier string   `json:"orgnr_supplier"`
	Subject     string   `json:"subject"`
	Audience    string   `json:"audience"`
	Scopes      []string `json:"scopes"`
	TokenID     string   `json:"token_id"`
	Outcome     string   `json:"outcome"`
	Error       string   `json:"error"`
}

// MAC is the record's MAC: HMAC-SHA-256 over the previous record's MAC and
// the record's canonical form. rec.Seq and rec.Prev must be set.
func (k Key) MAC(rec *store.AuditRecord) []byte {
	c := canonical{
		Instance: rec.Instance, Seq: rec.Seq, Time: rec.Time.UnixMicro(), RequestID: rec.RequestID,
		Endpoint: rec.Endpoint, GrantType: rec.GrantType, ClientID: rec.ClientID,
		OrgParent: rec.OrgParent, OrgChild: rec.OrgChild, OrgSupplier: rec.OrgSupplier,
		Subject: rec.Subject, Audience: rec.Audience, Scopes: rec.Scopes, TokenID: rec.TokenID,
		Outcome: rec.Outcome, Error: rec.Error,
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
// Stores call it inside the transaction that appends rec, in commit order.
func (k Key) Seal(rec *store.AuditRecord, headSeq int64, headMAC []byte) {
	rec.Seq = headSeq + 1
	rec.Prev = headMAC
	rec.Time = rec.Time.UTC().Truncate(time.Microsecond)
	rec.MAC = k.MAC(rec)
}
