package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

// Claims are the claims of a validated access token, typed (profile §5).
// Empty strings are claims the token did not carry: which ones an API gets
// is chosen by the API owner in HelseID's self-service.
type Claims struct {
	Issuer   string
	Audience []string
	ClientID string
	// JTI is the token's id: log it to trace a request, never the token.
	JTI       string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	Scopes    []string
	// JKT is cnf.jkt, the thumbprint of the key the token is bound to;
	// empty for a Bearer token.
	JKT string

	// ClientName is for logs, not for access decisions.
	ClientName string
	// Tenancy is "single-tenant" or "multi-tenant".
	Tenancy string
	// ClientAMR is how the client authenticated ("private_key_jwt").
	ClientAMR string
	// Organization is who the client acts for: orgnr_parent, orgnr_child
	// and, for a multi-tenant client when the API asks for it, the
	// supplier that received the delegation.
	Organization Organization
	// SFMJournalID is nhn:sfm:journal-id, from the client's
	// assertion_details.
	SFMJournalID string
	// OriginalClientID is the first client of a token-exchange chain.
	OriginalClientID string
	// APIClaims are the API-specific client claims
	// ("<audience>/client/claims/<name>", e.g.
	// "e-helse:sfm.api/client/claims/sfm-id") by full name. A value that
	// is not a JSON string is kept as its JSON text.
	APIClaims map[string]string

	// Person is the user the client acts for; nil for a machine token.
	Person *Person
	// Act is the most recent actor of a token exchange (RFC 8693 §4.1);
	// its Act is the one before, and so on. Nil if not exchanged.
	Act *Actor

	// Raw is the verified payload, for claims this type does not name.
	Raw json.RawMessage
}

// Organization holds organisation numbers (nine digits, Enhetsregisteret).
type Organization struct {
	Parent   string `json:"parent,omitempty"`
	Child    string `json:"child,omitempty"`
	Supplier string `json:"supplier,omitempty"`
}

// Person is the user behind a token from a user login.
type Person struct {
	// PID is the national identity number (fødselsnummer or D-number).
	// Treat it as sensitive: it is not for logs.
	PID string
	// Pseudonym is sub: a stable pseudonym of the person for this STS,
	// fit for logs and for matching local users.
	Pseudonym string
	// HPRNumber is the person's number in the health personnel register,
	// if they have one.
	HPRNumber string
	// SecurityLevel is "3" or "4" (the Norwegian levels); AssuranceLevel
	// is the eIDAS level ("substantial", "high").
	SecurityLevel  string
	AssuranceLevel string
	// Network is "internett" or "helsenett".
	Network          string
	Name             string
	GivenName        string
	MiddleName       string
	FamilyName       string
	IdentityProvider string
	AMR              []string
	AuthTime         time.Time
}

// Actor is one level of an act chain: a client that exchanged a token it
// was given for one of its own (RFC 8693 §4.1).
type Actor struct {
	ClientID     string
	Subject      string
	Organization Organization
	// Act is the actor before this one.
	Act *Actor
}

// Chain returns the actors from the most recent to the first.
func (c *Claims) Chain() []*Actor {
	var out []*Actor
	for a := c.Act; a != nil; a = a.Act {
		out = append(out, a)
	}
	return out
}

// HasScope reports whether the token carries scope s.
func (c *Claims) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

type ctxKey struct{}

// ClaimsFromContext returns the claims the middleware validated for the
// request whose context ctx is. They are shared with other requests that
// carry the same token (Config.TokenCache): read them, never modify them.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// WithClaims returns ctx carrying c, for tests of handlers.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// wireClaims is the payload as sent. Pointers and raw messages keep
// "missing" apart from "zero" where the difference matters.
type wireClaims struct {
	Issuer    string          `json:"iss"`
	Audience  json.RawMessage `json:"aud"`
	Expiry    *float64        `json:"exp"`
	NotBefore *float64        `json:"nbf"`
	IssuedAt  *float64        `json:"iat"`
	Subject   string          `json:"sub"`
	JTI       string          `json:"jti"`
	ClientID  string          `json:"client_id"`
	Scope     json.RawMessage `json:"scope"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`

	ClientAMR        string `json:"client_amr"`
	ClientName       string `json:"helseid://claims/client/client_name"`
	Tenancy          string `json:"helseid://claims/client/client_tenancy"`
	OrgNrParent      string `json:"helseid://claims/client/claims/orgnr_parent"`
	OrgNrChild       string `json:"helseid://claims/client/claims/orgnr_child"`
	OrgNrSupplier    string `json:"helseid://claims/client/claims/orgnr_supplier"`
	OriginalClientID string `json:"helseid://claims/client/original_client_id"`
	SFMJournalID     string `json:"nhn:sfm:journal-id"`

	PID            string   `json:"helseid://claims/identity/pid"`
	SecurityLevel  string   `json:"helseid://claims/identity/security_level"`
	AssuranceLevel string   `json:"helseid://claims/identity/assurance_level"`
	Network        string   `json:"helseid://claims/identity/network"`
	HPRNumber      string   `json:"helseid://claims/hpr/hpr_number"`
	Name           string   `json:"name"`
	GivenName      string   `json:"given_name"`
	MiddleName     string   `json:"middle_name"`
	FamilyName     string   `json:"family_name"`
	IDP            string   `json:"idp"`
	AMR            []string `json:"amr"`
	AuthTime       *float64 `json:"auth_time"`

	Act *wireActor `json:"act"`
}

type wireActor struct {
	Subject       string     `json:"sub"`
	ClientID      string     `json:"client_id"`
	OrgNrParent   string     `json:"helseid://claims/client/claims/orgnr_parent"`
	OrgNrChild    string     `json:"helseid://claims/client/claims/orgnr_child"`
	OrgNrSupplier string     `json:"helseid://claims/client/claims/orgnr_supplier"`
	Act           *wireActor `json:"act"`
}

// maxActDepth bounds the act chain: Tillit stops at three exchanges, and
// nothing legitimate nests deeper than this.
const maxActDepth = 8

// parseClaims reads a verified payload. Checks of values (iss, aud, exp…)
// are the caller's.
func parseClaims(payload []byte) (*Claims, *wireClaims, error) {
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, nil, errors.New("access token claims are not a JSON object of the right types")
	}
	aud, err := stringOrList(w.Audience, false)
	if err != nil {
		return nil, nil, errors.New("access token aud is neither a string nor a list of strings")
	}
	// HelseID writes scope as a JSON array; RFC 9068 §2.2.3 as a
	// space-separated string. Both mean the same.
	scopes, err := stringOrList(w.Scope, true)
	if err != nil {
		return nil, nil, errors.New("access token scope is neither a string nor a list of strings")
	}
	c := &Claims{
		Issuer:           w.Issuer,
		Audience:         aud,
		ClientID:         w.ClientID,
		JTI:              w.JTI,
		Scopes:           scopes,
		ClientName:       w.ClientName,
		Tenancy:          w.Tenancy,
		ClientAMR:        w.ClientAMR,
		Organization:     Organization{Parent: w.OrgNrParent, Child: w.OrgNrChild, Supplier: w.OrgNrSupplier},
		SFMJournalID:     w.SFMJournalID,
		OriginalClientID: w.OriginalClientID,
		Raw:              payload,
	}
	for _, t := range []struct {
		v   *float64
		dst *time.Time
	}{{w.IssuedAt, &c.IssuedAt}, {w.NotBefore, &c.NotBefore}, {w.Expiry, &c.Expiry}} {
		if t.v == nil {
			continue
		}
		if *t.dst, err = numericDate(*t.v); err != nil {
			return nil, nil, err
		}
	}
	if w.Cnf != nil {
		c.JKT = w.Cnf.JKT
	}
	if w.PID != "" || w.Subject != "" || w.HPRNumber != "" || w.SecurityLevel != "" {
		p := &Person{
			PID: w.PID, Pseudonym: w.Subject, HPRNumber: w.HPRNumber,
			SecurityLevel: w.SecurityLevel, AssuranceLevel: w.AssuranceLevel, Network: w.Network,
			Name: w.Name, GivenName: w.GivenName, MiddleName: w.MiddleName, FamilyName: w.FamilyName,
			IdentityProvider: w.IDP, AMR: w.AMR,
		}
		if w.AuthTime != nil {
			if p.AuthTime, err = numericDate(*w.AuthTime); err != nil {
				return nil, nil, err
			}
		}
		c.Person = p
	}
	depth := 0
	for a, dst := w.Act, &c.Act; a != nil; a, dst = a.Act, &(*dst).Act {
		if depth++; depth > maxActDepth {
			return nil, nil, errors.New("access token act chain is too deep")
		}
		*dst = &Actor{
			ClientID: a.ClientID, Subject: a.Subject,
			Organization: Organization{Parent: a.OrgNrParent, Child: a.OrgNrChild, Supplier: a.OrgNrSupplier},
		}
	}
	if c.APIClaims, err = apiClaims(payload, &w); err != nil {
		return nil, nil, err
	}
	return c, &w, nil
}

// apiClaimInfix marks API-specific client claims,
// "<audience>/client/claims/<name>" (profile §5.4).
const apiClaimInfix = "/client/claims/"

// apiClaims collects the API-specific client claims. Their names are not
// known in advance, so finding them needs a second parse; it is done only
// when the payload holds more claim names with the infix than the
// helseid:// organisation claims account for, which is rare.
func apiClaims(payload []byte, w *wireClaims) (map[string]string, error) {
	known := 0
	for _, v := range []string{w.OrgNrParent, w.OrgNrChild, w.OrgNrSupplier} {
		if v != "" {
			known++
		}
	}
	if bytes.Count(payload, []byte(apiClaimInfix)) <= known {
		return nil, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &all); err != nil {
		return nil, errors.New("access token claims are not a JSON object")
	}
	var out map[string]string
	for name, raw := range all {
		if !strings.Contains(name, apiClaimInfix) || strings.HasPrefix(name, "helseid://") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[name] = s
		} else {
			out[name] = string(raw)
		}
	}
	return out, nil
}

// stringOrList reads a JSON string or array of strings. With split, a
// string is a space-separated list.
func stringOrList(raw json.RawMessage, split bool) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if split {
			return strings.Fields(s), nil
		}
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// numericDate converts seconds since the epoch (RFC 7519 §2).
func numericDate(f float64) (time.Time, error) {
	if math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, errors.New("access token has a time claim out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
