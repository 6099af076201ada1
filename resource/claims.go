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

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
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

// Organization holds a token's organisation numbers: orgnr_parent,
// orgnr_child and orgnr_supplier.
type Organization = helseid.Organization

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
	ClientID     string       `json:"client_id,omitempty"`
	Subject      string       `json:"sub,omitempty"`
	Organization Organization `json:"organization"`
	// Act is the actor before this one.
	Act *Actor `json:"act,omitempty"`
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

// validated is what the middleware puts in a request's context: one value,
// so that the claims and the raw token cost one context entry.
type validated struct {
	claims *Claims
	token  string
}

// ClaimsFromContext returns the claims the middleware validated for the
// request whose context ctx is. They are shared with other requests that
// carry the same token (Config.TokenCache): read them, never modify them.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	v, ok := ctx.Value(ctxKey{}).(*validated)
	if !ok || v.claims == nil {
		return nil, false
	}
	return v.claims, true
}

// AccessTokenFromContext returns the access token the middleware validated
// for the request whose context ctx is, as it came in the Authorization
// header without its scheme: what an API passes on as the subject token of
// a token exchange. Like any token, it is not for logs.
func AccessTokenFromContext(ctx context.Context) (string, bool) {
	v, ok := ctx.Value(ctxKey{}).(*validated)
	if !ok || v.token == "" {
		return "", false
	}
	return v.token, true
}

// WithClaims returns ctx carrying c, for tests of handlers.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return withValidated(ctx, c, "")
}

// withValidated returns ctx carrying c and token. It costs one allocation,
// as context.WithValue with one value would.
func withValidated(ctx context.Context, c *Claims, token string) context.Context {
	return &validatedCtx{Context: ctx, v: validated{claims: c, token: token}}
}

// validatedCtx is a context that carries a validated token. Everything but
// its own value comes from the parent, cancellation included.
type validatedCtx struct {
	context.Context
	v validated
}

func (c *validatedCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return &c.v
	}
	return c.Context.Value(key)
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

// claimNames are the claims parseClaims reads: first those that are
// strings, in the order of the targets in parseClaims, then the times,
// then the rest.
var claimNames = jws.NewNames(
	"iss", "jti", "client_id", "client_amr",
	"helseid://claims/client/client_name", "helseid://claims/client/client_tenancy",
	"helseid://claims/client/claims/orgnr_parent", "helseid://claims/client/claims/orgnr_child",
	"helseid://claims/client/claims/orgnr_supplier", "helseid://claims/client/original_client_id",
	"nhn:sfm:journal-id", "sub", "helseid://claims/identity/pid",
	"helseid://claims/identity/security_level", "helseid://claims/identity/assurance_level",
	"helseid://claims/identity/network", "helseid://claims/hpr/hpr_number",
	"name", "given_name", "middle_name", "family_name", "idp",
	// times
	"exp", "nbf", "iat", "auth_time",
	// the rest
	"aud", "scope", "cnf", "amr", "act",
)

// Indices in claimNames of the first time and of the claims after them.
const (
	claimExp = 22 + iota
	claimNbf
	claimIat
	claimAuthTime
	claimAud
	claimScope
	claimCnf
	claimAMR
	claimAct
)

// parseClaims reads a verified payload in one pass (jws.Names): every
// claim Claims names must have its JSON type, appear at most once and may
// be null, which counts as missing. Checks of values (iss, aud, exp…) are
// the caller's.
func parseClaims(payload []byte) (*Claims, present, error) {
	c := &Claims{Raw: payload}
	var (
		p   Person
		has present
	)
	strs := [...]*string{&c.Issuer, &c.JTI, &c.ClientID, &c.ClientAMR, &c.ClientName, &c.Tenancy,
		&c.Organization.Parent, &c.Organization.Child, &c.Organization.Supplier, &c.OriginalClientID,
		&c.SFMJournalID, &p.Pseudonym, &p.PID, &p.SecurityLevel, &p.AssuranceLevel, &p.Network,
		&p.HPRNumber, &p.Name, &p.GivenName, &p.MiddleName, &p.FamilyName, &p.IdentityProvider}
	times := [...]*time.Time{&c.Expiry, &c.NotBefore, &c.IssuedAt, &p.AuthTime}
	err := claimNames.Read(payload, func(i int, name []byte, v jws.Value) error {
		switch {
		case i < 0:
			if !bytes.Contains(name, []byte(apiClaimInfix)) || bytes.HasPrefix(name, []byte("helseid://")) {
				return nil
			}
			return apiClaim(c, name, v)
		case i < len(strs):
			return jws.StringMember(name, v, strs[i])
		case i == claimExp:
			has.exp = v.Kind() != jws.KindNull
		case i == claimNbf:
			has.nbf = v.Kind() != jws.KindNull
		}
		if i < claimAud {
			return numericDate(v, times[i-claimExp])
		}
		return otherClaim(c, &p, i, v)
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

var cnfNames = jws.NewNames("jkt")

// otherClaim reads the claims whose values are neither a string nor a
// time: claimNames[i] is one of them.
func otherClaim(c *Claims, p *Person, i int, v jws.Value) error {
	if v.Kind() == jws.KindNull {
		return nil
	}
	var err error
	switch i {
	case claimAud:
		if c.Audience, err = stringOrList(v, false); err != nil {
			return errAudience
		}
	case claimScope:
		// HelseID writes scope as a JSON array; RFC 9068 §2.2.3 as a
		// space-separated string. Both mean the same.
		if c.Scopes, err = stringOrList(v, true); err != nil {
			return errScope
		}
	case claimCnf:
		if v.Kind() != jws.KindObject {
			return errClaims
		}
		return cnfNames.Read(v.Raw(), func(i int, name []byte, v jws.Value) error {
			if i < 0 {
				return nil
			}
			return jws.StringMember(name, v, &c.JKT)
		})
	case claimAMR:
		if v.Kind() != jws.KindArray {
			return errClaims
		}
		p.AMR, err = stringOrList(v, false)
	case claimAct:
		c.Act, err = parseActor(v, 1)
	}
	return err
}

var actorNames = jws.NewNames("sub", "client_id", "helseid://claims/client/claims/orgnr_parent",
	"helseid://claims/client/claims/orgnr_child", "helseid://claims/client/claims/orgnr_supplier", "act")

// parseActor reads one level of an act chain and, through act, the levels
// before it.
func parseActor(v jws.Value, depth int) (*Actor, error) {
	if depth > maxActDepth {
		return nil, errActDepth
	}
	if v.Kind() != jws.KindObject {
		return nil, errClaims
	}
	a := &Actor{}
	strs := [...]*string{&a.Subject, &a.ClientID, &a.Organization.Parent, &a.Organization.Child, &a.Organization.Supplier}
	err := actorNames.Read(v.Raw(), func(i int, name []byte, v jws.Value) error {
		switch {
		case i < 0:
			return nil
		case i < len(strs):
			return jws.StringMember(name, v, strs[i])
		case v.Kind() == jws.KindNull:
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
