package token

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/store"
)

// AccessClaims are the claims of a HelseID access token (profile §5). Field
// order is wire order. Optional HelseID claims are left out when empty.
type AccessClaims struct {
	Issuer    string        `json:"iss"`
	NotBefore int64         `json:"nbf"`
	IssuedAt  int64         `json:"iat"`
	Expiry    int64         `json:"exp"`
	Audience  string        `json:"aud"`
	Scope     []string      `json:"scope"`
	ClientID  string        `json:"client_id"`
	JTI       string        `json:"jti"`
	Cnf       *Confirmation `json:"cnf,omitempty"`
	// Identity is the user the token speaks for; empty in machine tokens.
	Identity
	// Act names who exchanged the token (token exchange), the earlier
	// actors nested inside.
	Act *Actor `json:"act,omitempty"`

	ClientAMR        string `json:"client_amr"`
	HelseIDClientAMR string `json:"helseid://claims/client/amr"`
	ClientName       string `json:"helseid://claims/client/client_name,omitempty"`
	ClientTenancy    string `json:"helseid://claims/client/client_tenancy,omitempty"`
	OrgNrParent      string `json:"helseid://claims/client/claims/orgnr_parent,omitempty"`
	OrgNrChild       string `json:"helseid://claims/client/claims/orgnr_child,omitempty"`
	OrgNrSupplier    string `json:"helseid://claims/client/claims/orgnr_supplier,omitempty"`
	SFMJournalID     string `json:"nhn:sfm:journal-id,omitempty"`
	// OriginalClientID is the client of the first token of an exchange
	// chain (profile §4.6); the client_id of an exchanged token is the actor.
	OriginalClientID string `json:"helseid://claims/client/original_client_id,omitempty"`

	// APIClaims are API-specific client claims by full name, such as
	// "e-helse:sfm.api/client/claims/sfm-id".
	APIClaims map[string]string `json:"-"`
}

// Identity is what a token says about the user behind it (profile §5.2,
// §5.3): the login's claims, carried by refresh and token exchange. Every
// field is left out when empty, so machine tokens carry none of them.
type Identity struct {
	Subject        string   `json:"sub,omitempty"`
	AuthTime       int64    `json:"auth_time,omitempty"`
	IDP            string   `json:"idp,omitempty"`
	AMR            []string `json:"amr,omitempty"`
	SID            string   `json:"sid,omitempty"`
	PID            string   `json:"helseid://claims/identity/pid,omitempty"`
	PIDPseudonym   string   `json:"helseid://claims/identity/pid_pseudonym,omitempty"`
	SecurityLevel  string   `json:"helseid://claims/identity/security_level,omitempty"`
	AssuranceLevel string   `json:"helseid://claims/identity/assurance_level,omitempty"`
	Network        string   `json:"helseid://claims/identity/network,omitempty"`
	HPRNumber      string   `json:"helseid://claims/hpr/hpr_number,omitempty"`
	// Names are the names the identity provider gave, sealed for
	// userinfo (NameSealer); empty when it gave none or profile was not
	// granted.
	Names string `json:"tillit_names,omitempty"`
}

// Actor is the act claim of an exchanged token (RFC 8693 §4.1, profile
// §4.6): the client that exchanged it and the organisation it acted for. The
// actor of the token it exchanged is nested inside, so the innermost act is
// the oldest.
type Actor struct {
	Issuer      string `json:"iss,omitempty"`
	ClientID    string `json:"client_id"`
	OrgNrParent string `json:"helseid://claims/client/claims/orgnr_parent,omitempty"`
	OrgNrChild  string `json:"helseid://claims/client/claims/orgnr_child,omitempty"`
	Act         *Actor `json:"act,omitempty"`
}

// depth counts the act levels of a chain: the number of exchanges behind a
// token.
func (a *Actor) depth() int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// Confirmation binds a token to a key (RFC 7800, RFC 9449 §6.1).
type Confirmation struct {
	JKT string `json:"jkt"`
}

// MarshalJSON writes the fixed claims and then the API-specific ones in
// name order, so that the same token always has the same bytes.
func (c *AccessClaims) MarshalJSON() ([]byte, error) {
	type plain AccessClaims
	b, err := json.Marshal((*plain)(c))
	if err != nil || len(c.APIClaims) == 0 {
		return b, err
	}
	names := make([]string, 0, len(c.APIClaims))
	for n := range c.APIClaims {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	buf.Grow(len(b) + 64*len(names))
	buf.Write(b[:len(b)-1])
	for _, n := range names {
		k, _ := json.Marshal(n)
		v, _ := json.Marshal(c.APIClaims[n])
		buf.WriteByte(',')
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// newTokenID returns 128 random bits as 32 upper-case hex digits, the form
// of jti in HelseID tokens.
func newTokenID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("token: crypto/rand failed: " + err.Error())
	}
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// clientClaims are the claims about the client and the organisation it acts
// for that a token for api carries (profile §5.3, §5.4): the fixed client
// claims, and the optional ones the API asks for.
func clientClaims(t *tokenRequest, api *store.API, org organization) AccessClaims {
	var c AccessClaims
	c.ClientID = t.Client.ID
	c.ClientAMR = helseid.ClientAMRPrivateKeyJWT
	c.HelseIDClientAMR = helseid.ClientAMRECKey
	if _, ok := t.Assertion.Key.Key.(*rsa.PublicKey); ok {
		c.HelseIDClientAMR = helseid.ClientAMRRSAKey
	}
	c.ClientName = t.Client.Name
	c.ClientTenancy = org.Tenancy
	c.OrgNrParent = org.Parent
	c.OrgNrChild = org.Child
	for _, want := range api.ClientClaims {
		switch want {
		case helseid.WantOrgNrSupplier:
			c.OrgNrSupplier = org.Supplier
		case helseid.WantSFMJournalID:
			c.SFMJournalID = org.JournalID
		default:
			name := helseid.APIClientClaim(api.Audience, want)
			if v, ok := t.Client.Claims[name]; ok {
				if c.APIClaims == nil {
					c.APIClaims = map[string]string{}
				}
				c.APIClaims[name] = v
			}
		}
	}
	return c
}
