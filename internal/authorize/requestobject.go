package authorize

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/registry"
)

// CodeInvalidRequestObject is RFC 9101 §6.3's error for a request object
// that fails its checks.
const CodeInvalidRequestObject = "invalid_request_object"

// maxRequestObject bounds a request object: a few hundred bytes of
// parameters, signed.
const maxRequestObject = 16 << 10

// RequestObjects checks request objects (RFC 9101) passed by value.
type RequestObjects struct {
	// Algorithms are the signing algorithms accepted: the ones client
	// assertions take.
	Algorithms []jose.SignatureAlgorithm
	// Audiences are the accepted aud values: the issuer, with and without
	// a trailing "/".
	Audiences []string
	// MaxLifetime bounds exp - now (and exp - nbf); ClockSkew is the
	// leeway for nbf, iat and exp.
	MaxLifetime time.Duration
	ClockSkew   time.Duration
}

// open verifies a request object of client c and merges its parameters
// into p: they win over the plain ones (RFC 9101 §6.3; HelseID's web
// samples send both). Signed with a registered key of the client; iss the
// client; aud the issuer; exp required; typ, jti, nbf and iat optional.
func (ro *RequestObjects) open(raw string, c *registry.Client, p params, now time.Time) (params, error) {
	if len(raw) > maxRequestObject {
		return p, errors.New("request is too large")
	}
	j, err := jws.Parse(raw, ro.Algorithms)
	if err != nil {
		if errors.Is(err, jws.ErrAlgorithm) {
			return p, errors.New("request must be signed with one of the allowed algorithms")
		}
		return p, errors.New("request is not a signed JWT")
	}
	if t := j.Header.Typ; t != "" && t != "oauth-authz-req+jwt" && t != "JWT" {
		return p, errors.New("request has typ " + strconv.Quote(t) + ": it must be oauth-authz-req+jwt, JWT or none")
	}
	verified := false
	keys := c.Keys()
	for i := range keys {
		k := &keys[i]
		if j.Header.Kid != "" && k.KeyID != j.Header.Kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(j.Algorithm()) {
			continue
		}
		if jws.CheckKey(j.Algorithm(), k.Key) != nil {
			continue
		}
		if j.Verify(k.Key) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return p, errors.New("request signature does not verify with a registered key of the client")
	}

	var claims map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(j.Payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return p, errors.New("request payload is not a JSON object")
	}
	str := func(name string) (string, bool, error) {
		v, ok := claims[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, errors.New("request claim " + name + " must be a string")
		}
		return s, true, nil
	}
	if iss, _, err := str("iss"); err != nil || iss != c.ID {
		return p, errors.New("request iss must be the client_id")
	}
	if id, ok, err := str("client_id"); err != nil || (ok && id != c.ID) {
		return p, errors.New("request client_id is not the client's")
	}
	if err := ro.checkAudience(claims["aud"]); err != nil {
		return p, err
	}
	exp, ok := numericDate(claims["exp"])
	switch {
	case !ok:
		return p, errors.New("request exp is missing")
	case !now.Before(exp.Add(ro.ClockSkew)):
		return p, errors.New("request has expired")
	case exp.Sub(now) > ro.MaxLifetime+ro.ClockSkew:
		return p, errors.New("request exp is too far ahead")
	}
	for _, name := range []string{"nbf", "iat"} {
		if v, present := claims[name]; present {
			t, ok := numericDate(v)
			if !ok {
				return p, errors.New("request " + name + " is not a time")
			}
			if t.After(now.Add(ro.ClockSkew)) {
				return p, errors.New("request " + name + " is in the future")
			}
		}
	}
	if _, ok := claims["request"]; ok {
		return p, errors.New("request must not contain request")
	}
	if _, ok := claims["request_uri"]; ok {
		return p, errors.New("request must not contain request_uri")
	}

	out := params{one: make(map[string]string, len(p.one)+len(claims)), resources: p.resources}
	for k, v := range p.one {
		out.one[k] = v
	}
	delete(out.one, "request")
	for _, name := range authzParams {
		v, ok := claims[name]
		if !ok {
			continue
		}
		if s, _, err := str(name); err == nil {
			out.one[name] = s
			continue
		}
		var n json.Number
		if name == "max_age" && json.Unmarshal(v, &n) == nil {
			out.one[name] = n.String()
			continue
		}
		return p, errors.New("request claim " + name + " must be a string")
	}
	if v, ok := claims["resource"]; ok {
		var one string
		var many []string
		switch {
		case json.Unmarshal(v, &one) == nil:
			out.resources = []string{one}
		case json.Unmarshal(v, &many) == nil:
			out.resources = many
		default:
			return p, errors.New("request claim resource must be a string or an array of strings")
		}
	}
	return out, nil
}

// authzParams are the parameters a request object may carry.
var authzParams = []string{
	"response_type", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "acr_values", "prompt",
	"login_hint", "ui_locales", "max_age", "dpop_jkt", "response_mode",
	"test_pid", "test_security_level", "test_hpr_number",
}

func (ro *RequestObjects) checkAudience(raw json.RawMessage) error {
	var one string
	var many []string
	switch {
	case raw == nil:
		return errors.New("request aud is missing: it must be the issuer")
	case json.Unmarshal(raw, &one) == nil:
		many = []string{one}
	case json.Unmarshal(raw, &many) == nil:
	default:
		return errors.New("request aud must be the issuer")
	}
	for _, a := range many {
		for _, want := range ro.Audiences {
			if a == want {
				return nil
			}
		}
	}
	return errors.New("request aud must be the issuer")
}

// numericDate reads a NumericDate: a number, or a numeric string as some
// HelseID clients send.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if raw == nil {
		return time.Time{}, false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
