package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
)

// maxAccessTokenSize bounds an access token presented back to the service
// (a subject token, a token to introspect). Tillit's tokens are 1–2 KiB,
// exchanged ones with three nested actors under 4 KiB.
const maxAccessTokenSize = 16 << 10

// instanceSkew is how far nbf may be ahead of this instance's clock: the
// token may come from another instance whose clock runs a little ahead.
// exp gets no leeway: an expired token must not be exchanged.
const instanceSkew = 5 * time.Second

// accessTokenAlgorithms are the algorithms the service signs with
// (config keys.algorithm).
var accessTokenAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// tokenError says why a presented access token is not one this service
// issued and that is valid now. Reason is safe to send to the client.
type tokenError struct{ Reason string }

func (e *tokenError) Error() string { return "token: access token " + e.Reason }

// verifiedToken is an access token this service issued, checked.
type verifiedToken struct {
	Claims AccessClaims
	// Raw holds every claim as sent, for those AccessClaims does not name
	// (API-specific client claims).
	Raw map[string]json.RawMessage
}

// verifyAccessToken checks that raw is an access token this service issued
// and that it is valid at now: a JWS with typ at+jwt signed by one of keys
// (found by kid, never by a key the token carries), iss the issuer, nbf and
// exp around now, and the claims every token has. It uses no store: the
// keys are the published ones, which include the retired keys whose tokens
// may still live.
func verifyAccessToken(raw string, keys jose.JSONWebKeySet, issuer string, now time.Time) (*verifiedToken, error) {
	reject := func(format string, args ...any) error { return &tokenError{Reason: fmt.Sprintf(format, args...)} }
	if len(raw) > maxAccessTokenSize {
		return nil, reject("is too large")
	}
	tok, err := jws.Parse(raw, accessTokenAlgorithms)
	if err != nil {
		return nil, reject("is not a JWS signed with %s, %s or %s", jose.RS256, jose.PS256, jose.ES256)
	}
	h := &tok.Header
	if h.Typ != "at+jwt" {
		return nil, reject("typ must be at+jwt")
	}
	var key *jose.JSONWebKey
	for i := range keys.Keys {
		if k := &keys.Keys[i]; h.Kid != "" && k.KeyID == h.Kid && k.Algorithm == h.Alg {
			key = k
			break
		}
	}
	if key == nil {
		return nil, reject("is not signed by a key of this token service")
	}
	if err := tok.Verify(key.Key); err != nil {
		return nil, reject("signature is invalid")
	}
	payload := tok.Payload
	v := &verifiedToken{}
	if err := json.Unmarshal(payload, &v.Raw); err != nil {
		return nil, reject("claims are not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&v.Claims); err != nil {
		return nil, reject("claims are not of the types this token service writes")
	}
	c := &v.Claims
	switch {
	case c.Issuer != issuer:
		return nil, reject("was not issued by this token service (iss)")
	case c.Expiry == 0:
		return nil, reject("has no exp")
	case !now.Before(time.Unix(c.Expiry, 0)):
		return nil, reject("has expired")
	case time.Unix(c.NotBefore, 0).After(now.Add(instanceSkew)):
		return nil, reject("is not valid yet (nbf)")
	case c.ClientID == "":
		return nil, reject("has no client_id")
	case c.Audience == "":
		return nil, reject("has no aud")
	}
	return v, nil
}
