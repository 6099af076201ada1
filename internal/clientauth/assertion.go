package clientauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
)

// MaxAssertionSize bounds a client assertion. Assertions with
// assertion_details are around 1–2 KiB.
const MaxAssertionSize = 8 << 10

const maxJTILength = 256

// ErrInvalid is matched by every rejection of an assertion: it maps to
// invalid_client.
var ErrInvalid = errors.New("clientauth: invalid client assertion")

// ErrBothDetails is a valid assertion that carries assertion_details and
// authorization_details at once, which HelseID refuses. It maps to
// invalid_request.
var ErrBothDetails = errors.New("clientauth: both assertion_details and authorization_details")

// Error is a rejection whose Reason is safe to send as error_description.
type Error struct {
	Reason string
	err    error
}

func (e *Error) Error() string { return "clientauth: " + e.Reason }
func (e *Error) Unwrap() error { return e.err }

func reject(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...), err: ErrInvalid}
}

// Verifier checks client assertions.
type Verifier struct {
	// Algorithms allowed. RS* can be left out to refuse PKCS #1 v1.5.
	Algorithms []jose.SignatureAlgorithm
	// Audiences accepted in aud: the issuer, the issuer with a trailing
	// slash and the URL of the endpoint the assertion is sent to.
	Audiences []string
	// MaxLifetime is the longest accepted exp − now and exp − iat (60 s).
	MaxLifetime time.Duration
	// ClockSkew is the tolerance for nbf, iat and exp (10 s).
	ClockSkew time.Duration
}

// Assertion is a parsed assertion. Its claims are not trusted until Verify
// has passed.
type Assertion struct {
	jws    *jws.JWS
	alg    jose.SignatureAlgorithm
	kid    string
	claims claims

	// ClientID is the sub (and iss) of the assertion.
	ClientID string
	JTI      string
	Expires  time.Time
	// Details is the raw value of assertion_details or
	// authorization_details, nil when absent; DetailsClaim says which.
	Details      json.RawMessage
	DetailsClaim string
	// Key is the registered key that verified the signature.
	Key *jose.JSONWebKey
}

// claims are the assertion's claims as they came; times and aud keep
// their JSON value until Verify checks them.
type claims struct {
	Iss, Sub, JTI                          *string
	Aud, Exp, Nbf, Iat                     jws.Value
	AssertionDetails, AuthorizationDetails jws.Value
}

var claimNames = jws.NewNames("iss", "sub", "jti", "aud", "exp", "nbf", "iat",
	helseid.ClaimAssertionDetails, helseid.ClaimAuthorizationDetails)

// read fills c from the payload: one JSON object, each claim read here at
// most once (a repeated claim is refused), iss, sub and jti strings.
func (c *claims) read(payload []byte) error {
	strs := [...]**string{&c.Iss, &c.Sub, &c.JTI}
	vals := [...]*jws.Value{&c.Aud, &c.Exp, &c.Nbf, &c.Iat, &c.AssertionDetails, &c.AuthorizationDetails}
	return claimNames.Read(payload, func(i int, name []byte, v jws.Value) error {
		switch {
		case i < 0:
			return nil
		case i >= len(strs):
			*vals[i-len(strs)] = v
			return nil
		}
		return jws.StringPointerMember(name, v, strs[i])
	})
}

// Parse checks the form of an assertion, its header and the types of its
// claims, and says which client it claims to be. It verifies nothing: the
// caller looks the client up by ClientID and then calls Verify.
func (v *Verifier) Parse(assertion string) (*Assertion, error) {
	if assertion == "" {
		return nil, reject("client_assertion is missing")
	}
	if len(assertion) > MaxAssertionSize {
		return nil, reject("client_assertion is too large")
	}
	tok, err := jws.Parse(assertion, v.Algorithms)
	if err != nil {
		return nil, diagnose(assertion, v.Algorithms, err)
	}
	h := &tok.Header
	// HelseID accepts the typ of RFC 7523bis, the plain JWT typ and none.
	switch strings.ToLower(h.Typ) {
	case "", "jwt", "client-authentication+jwt":
	default:
		return nil, reject("client_assertion typ %q is not accepted (client-authentication+jwt, JWT or none)", h.Typ)
	}
	a := &Assertion{jws: tok, alg: tok.Algorithm(), kid: h.Kid}
	if err := a.claims.read(tok.Payload); err != nil {
		return nil, reject("client_assertion claims are not a JSON object of the right types")
	}
	c := &a.claims
	switch {
	case c.Sub == nil || *c.Sub == "":
		return nil, reject("client_assertion has no sub")
	case c.Iss == nil || *c.Iss != *c.Sub:
		return nil, reject("client_assertion iss must equal sub (the client_id)")
	}
	a.ClientID = *c.Sub
	return a, nil
}

// Verify checks the signature with the client's registered keys and then
// the claims, at now. Keys in the assertion's own header (jwk, jku, x5u,
// x5c) are never used: only registered keys count.
func (v *Verifier) Verify(a *Assertion, keys []jose.JSONWebKey, now time.Time) error {
	key, err := v.verifySignature(a, keys)
	if err != nil {
		return err
	}
	a.Key = key
	c := &a.claims
	if err := v.checkAudience(c.Aud); err != nil {
		return err
	}
	if c.Exp.Kind() == 0 {
		return reject("client_assertion has no exp")
	}
	exp, ok := numericDate(c.Exp, false)
	if !ok {
		return reject("client_assertion exp is not a number")
	}
	if !now.Before(exp.Add(v.ClockSkew)) {
		return reject("client_assertion has expired")
	}
	// The lifetime cap allows the clock skew on the server's side: a client
	// whose clock runs a little ahead and signs for exactly 60 s must pass.
	if exp.Sub(now) > v.MaxLifetime+v.ClockSkew {
		return reject("client_assertion lifetime exceeds %d seconds", int(v.MaxLifetime/time.Second))
	}
	if c.Iat.Kind() != 0 {
		// HelseID's own examples send iat as a string of digits.
		iat, ok := numericDate(c.Iat, true)
		if !ok {
			return reject("client_assertion iat is not a number")
		}
		if iat.After(now.Add(v.ClockSkew)) {
			return reject("client_assertion iat is in the future")
		}
		if exp.Sub(iat) > v.MaxLifetime {
			return reject("client_assertion lifetime exceeds %d seconds", int(v.MaxLifetime/time.Second))
		}
	}
	if c.Nbf.Kind() != 0 {
		nbf, ok := numericDate(c.Nbf, false)
		if !ok {
			return reject("client_assertion nbf is not a number")
		}
		if nbf.After(now.Add(v.ClockSkew)) {
			return reject("client_assertion is not valid yet (nbf)")
		}
	}
	switch {
	case c.JTI == nil || *c.JTI == "":
		return reject("client_assertion has no jti")
	case len(*c.JTI) > maxJTILength:
		return reject("client_assertion jti is too long")
	}
	a.JTI = *c.JTI
	a.Expires = exp
	hasAD, hasAZ := present(c.AssertionDetails), present(c.AuthorizationDetails)
	switch {
	case hasAD && hasAZ:
		return ErrBothDetails
	case hasAD:
		a.Details, a.DetailsClaim = c.AssertionDetails.Raw(), helseid.ClaimAssertionDetails
	case hasAZ:
		a.Details, a.DetailsClaim = c.AuthorizationDetails.Raw(), helseid.ClaimAuthorizationDetails
	}
	return nil
}

// ReplayUntil is how long the assertion's jti must be remembered: until the
// assertion can no longer pass the exp check.
func (v *Verifier) ReplayUntil(a *Assertion) time.Time { return a.Expires.Add(v.ClockSkew) }

func (v *Verifier) verifySignature(a *Assertion, keys []jose.JSONWebKey) (*jose.JSONWebKey, error) {
	var candidates []*jose.JSONWebKey
	for i := range keys {
		k := &keys[i]
		if a.kid != "" && k.KeyID != a.kid {
			continue
		}
		// A registered key that names its alg is used with that alg only
		// (RFC 7517 §4.4).
		if k.Algorithm != "" && k.Algorithm != string(a.alg) {
			continue
		}
		if jws.CheckKey(a.alg, k.Key) != nil {
			continue
		}
		candidates = append(candidates, k)
	}
	if len(candidates) == 0 {
		if a.kid != "" {
			return nil, reject("no registered key of the client has kid %q and fits alg %s", a.kid, a.alg)
		}
		return nil, reject("no registered key of the client fits alg %s", a.alg)
	}
	// Without a kid every key of the right type is tried, as HelseID does.
	for _, k := range candidates {
		if err := a.jws.Verify(k.Key); err == nil {
			return k, nil
		}
	}
	return nil, reject("client_assertion signature is invalid")
}

func (v *Verifier) checkAudience(aud jws.Value) error {
	if aud.Kind() == 0 {
		return reject("client_assertion has no aud")
	}
	var auds []string
	if one, ok := aud.Text(); ok {
		auds = []string{one}
	} else if err := aud.Elements(func(e jws.Value) error {
		s, ok := e.Text()
		if !ok {
			return jws.ErrJSON
		}
		auds = append(auds, s)
		return nil
	}); err != nil || len(auds) == 0 {
		return reject("client_assertion aud is neither a string nor an array of strings")
	}
	// Every value must name this server: an assertion that also names
	// another audience could be replayed there.
	for _, aud := range auds {
		ok := false
		for _, want := range v.Audiences {
			ok = ok || aud == want
		}
		if !ok {
			return reject("client_assertion aud %q is not accepted (use the issuer %q or the endpoint URL)", aud, v.Audiences[0])
		}
	}
	return nil
}

func present(v jws.Value) bool {
	return v.Kind() != 0 && v.Kind() != jws.KindNull
}

// numericDate parses seconds since the epoch; with allowString also a JSON
// string of digits.
func numericDate(v jws.Value, allowString bool) (time.Time, bool) {
	f, ok := v.Float()
	if !ok {
		s, isString := v.Text()
		if !allowString || !isString {
			return time.Time{}, false
		}
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return time.Time{}, false
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// diagnose says why an assertion did not parse.
func diagnose(assertion string, algs []jose.SignatureAlgorithm, err error) error {
	if errors.Is(err, jws.ErrAlgorithm) {
		var h struct {
			Alg string `json:"alg"`
		}
		head, _, _ := strings.Cut(assertion, ".")
		if raw, derr := base64.RawURLEncoding.DecodeString(head); derr == nil {
			_ = json.Unmarshal(raw, &h)
		}
		return reject("client_assertion alg %q is not allowed (allowed: %s)", h.Alg, strings.Join(jws.AlgorithmNames(algs), " "))
	}
	if strings.Count(assertion, ".") != 2 {
		return reject("client_assertion is not a compact JWS (three dot-separated parts)")
	}
	head, _, _ := strings.Cut(assertion, ".")
	if raw, derr := base64.RawURLEncoding.DecodeString(head); derr != nil || !json.Valid(raw) {
		return reject("client_assertion header is not base64url JSON")
	}
	return reject("client_assertion is not a well-formed JWS")
}
