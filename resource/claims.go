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

	"github.com/tillit-sts/tillit/jws"
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

// maxActDepth bounds the act chain: Tillit stops at three exchanges, and
// nothing legitimate nests deeper than this.
const maxActDepth = 8

// apiClaimInfix marks API-specific client claims,
// "<audience>/client/claims/<name>" (profile §5.4).
const apiClaimInfix = "/client/claims/"

// Refusals of parseClaims that say more than "not the right types".
var (
	errAudience = errors.New("access token aud is neither a string nor a list of strings")
	errScope    = errors.New("access token scope is neither a string nor a list of strings")
	errTime     = errors.New("access token has a time claim out of range")
	errActDepth = errors.New("access token act chain is too deep")
	errClaims   = errors.New("access token claims are not a JSON object of the right types")
)

// present says which optional registered claims a payload had: a missing
// exp is refused, where an exp in the past is merely expired.
type present struct{ exp, nbf bool }

// parseClaims reads a verified payload in one pass (jws.ReadObject):
// every claim Claims names must have its JSON type, appear at most once
// and may be null, which counts as missing. Checks of values (iss, aud,
// exp…) are the caller's.
func parseClaims(payload []byte) (*Claims, present, error) {
	c := &Claims{Raw: payload}
	var (
		p    Person
		has  present
		seen uint64
	)
	err := jws.ReadObject(payload, func(name []byte, v jws.Value) error {
		var (
			bit uint
			dst *string
			tm  *time.Time
		)
		switch string(name) {
		case "iss":
			bit, dst = 0, &c.Issuer
		case "jti":
			bit, dst = 1, &c.JTI
		case "client_id":
			bit, dst = 2, &c.ClientID
		case "client_amr":
			bit, dst = 3, &c.ClientAMR
		case "helseid://claims/client/client_name":
			bit, dst = 4, &c.ClientName
		case "helseid://claims/client/client_tenancy":
			bit, dst = 5, &c.Tenancy
		case "helseid://claims/client/claims/orgnr_parent":
			bit, dst = 6, &c.Organization.Parent
		case "helseid://claims/client/claims/orgnr_child":
			bit, dst = 7, &c.Organization.Child
		case "helseid://claims/client/claims/orgnr_supplier":
			bit, dst = 8, &c.Organization.Supplier
		case "helseid://claims/client/original_client_id":
			bit, dst = 9, &c.OriginalClientID
		case "nhn:sfm:journal-id":
			bit, dst = 10, &c.SFMJournalID
		case "sub":
			bit, dst = 11, &p.Pseudonym
		case "helseid://claims/identity/pid":
			bit, dst = 12, &p.PID
		case "helseid://claims/identity/security_level":
			bit, dst = 13, &p.SecurityLevel
		case "helseid://claims/identity/assurance_level":
			bit, dst = 14, &p.AssuranceLevel
		case "helseid://claims/identity/network":
			bit, dst = 15, &p.Network
		case "helseid://claims/hpr/hpr_number":
			bit, dst = 16, &p.HPRNumber
		case "name":
			bit, dst = 17, &p.Name
		case "given_name":
			bit, dst = 18, &p.GivenName
		case "middle_name":
			bit, dst = 19, &p.MiddleName
		case "family_name":
			bit, dst = 20, &p.FamilyName
		case "idp":
			bit, dst = 21, &p.IdentityProvider
		case "exp":
			bit, tm, has.exp = 22, &c.Expiry, v.Kind() != jws.KindNull
		case "nbf":
			bit, tm, has.nbf = 23, &c.NotBefore, v.Kind() != jws.KindNull
		case "iat":
			bit, tm = 24, &c.IssuedAt
		case "auth_time":
			bit, tm = 25, &p.AuthTime
		case "aud", "scope", "cnf", "amr", "act":
			return complexClaim(c, &p, name, v, &seen)
		default:
			if !bytes.Contains(name, []byte(apiClaimInfix)) || bytes.HasPrefix(name, []byte("helseid://")) {
				return nil
			}
			return apiClaim(c, name, v)
		}
		if seen&(1<<bit) != 0 {
			return jws.ErrDuplicate
		}
		seen |= 1 << bit
		if tm != nil {
			return numericDate(v, tm)
		}
		return jws.StringMember(name, v, dst)
	})
	switch {
	case err == nil:
	case errors.Is(err, errAudience), errors.Is(err, errScope), errors.Is(err, errTime), errors.Is(err, errActDepth):
		return nil, present{}, err
	default:
		return nil, present{}, errClaims
	}
	if p.PID != "" || p.Pseudonym != "" || p.HPRNumber != "" || p.SecurityLevel != "" {
		c.Person = &p
	}
	return c, has, nil
}

// complexClaim reads the claims whose values are not a string or a time.
func complexClaim(c *Claims, p *Person, name []byte, v jws.Value, seen *uint64) error {
	var bit uint
	switch string(name) {
	case "aud":
		bit = 26
	case "scope":
		bit = 27
	case "cnf":
		bit = 28
	case "amr":
		bit = 29
	case "act":
		bit = 30
	}
	if *seen&(1<<bit) != 0 {
		return jws.ErrDuplicate
	}
	*seen |= 1 << bit
	if v.Kind() == jws.KindNull {
		return nil
	}
	var err error
	switch bit {
	case 26:
		if c.Audience, err = stringOrList(v, false); err != nil {
			return errAudience
		}
	case 27:
		// HelseID writes scope as a JSON array; RFC 9068 §2.2.3 as a
		// space-separated string. Both mean the same.
		if c.Scopes, err = stringOrList(v, true); err != nil {
			return errScope
		}
	case 28:
		var once bool
		return v.Members(func(name []byte, v jws.Value) error {
			if string(name) != "jkt" {
				return nil
			}
			if once {
				return jws.ErrDuplicate
			}
			once = true
			return jws.StringMember(name, v, &c.JKT)
		})
	case 29:
		if v.Kind() != jws.KindArray {
			return errClaims
		}
		p.AMR, err = stringOrList(v, false)
		return err
	case 30:
		c.Act, err = parseActor(v, 1)
		return err
	}
	return nil
}

// parseActor reads one level of an act chain and, through act, the levels
// before it.
func parseActor(v jws.Value, depth int) (*Actor, error) {
	if depth > maxActDepth {
		return nil, errActDepth
	}
	a := &Actor{}
	var seen uint8
	err := v.Members(func(name []byte, v jws.Value) error {
		var bit uint8
		var dst *string
		switch string(name) {
		case "sub":
			bit, dst = 1, &a.Subject
		case "client_id":
			bit, dst = 2, &a.ClientID
		case "helseid://claims/client/claims/orgnr_parent":
			bit, dst = 4, &a.Organization.Parent
		case "helseid://claims/client/claims/orgnr_child":
			bit, dst = 8, &a.Organization.Child
		case "helseid://claims/client/claims/orgnr_supplier":
			bit, dst = 16, &a.Organization.Supplier
		case "act":
			bit = 32
		default:
			return nil
		}
		if seen&bit != 0 {
			return jws.ErrDuplicate
		}
		seen |= bit
		if dst != nil {
			return jws.StringMember(name, v, dst)
		}
		if v.Kind() == jws.KindNull {
			return nil
		}
		var err error
		a.Act, err = parseActor(v, depth+1)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// apiClaim keeps an API-specific client claim: a string's value, or any
// other value's JSON text; null is the empty string.
func apiClaim(c *Claims, name []byte, v jws.Value) error {
	if _, dup := c.APIClaims[string(name)]; dup {
		return jws.ErrDuplicate
	}
	if c.APIClaims == nil {
		c.APIClaims = map[string]string{}
	}
	s, ok := v.Text()
	switch {
	case ok:
	case v.Kind() == jws.KindNull:
		s = ""
	default:
		s = string(v.Raw())
	}
	c.APIClaims[string(name)] = s
	return nil
}

// stringOrList reads a JSON string or array of strings. With split, a
// string is a space-separated list.
func stringOrList(v jws.Value, split bool) ([]string, error) {
	if s, ok := v.Text(); ok {
		if split {
			return strings.Fields(s), nil
		}
		return []string{s}, nil
	}
	var l []string
	err := v.Elements(func(e jws.Value) error {
		s, ok := e.Text()
		if !ok {
			return errClaims
		}
		l = append(l, s)
		return nil
	})
	return l, err
}

// numericDate reads seconds since the epoch (RFC 7519 §2) into *dst; null
// leaves it zero.
func numericDate(v jws.Value, dst *time.Time) error {
	if v.Kind() == jws.KindNull {
		return nil
	}
	f, ok := v.Float()
	if !ok {
		if v.Kind() == jws.KindNumber {
			return errTime
		}
		return errClaims
	}
	if math.IsNaN(f) || f < 0 || f > 1<<40 {
		return errTime
	}
	sec, frac := math.Modf(f)
	*dst = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}
