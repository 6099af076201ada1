package client

import (
	"encoding/json"
	"fmt"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
)

// Wire values of private_key_jwt (RFC 7523 §2.2, profile §2.2).
const (
	clientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionType is the typ every current NHN library sends; HelseID
	// also accepts "JWT" and none.
	assertionType = "client-authentication+jwt"
)

// assertionClaims are the claims of a client assertion (profile §2.3).
// iat is a number, as RFC 7519 says; some NHN samples send a string, which
// HelseID also accepts.
type assertionClaims struct {
	Issuer           string          `json:"iss"`
	Subject          string          `json:"sub"`
	Audience         string          `json:"aud"`
	IssuedAt         int64           `json:"iat"`
	NotBefore        int64           `json:"nbf"`
	Expiry           int64           `json:"exp"`
	ID               string          `json:"jti"`
	AssertionDetails json.RawMessage `json:"assertion_details,omitempty"`
}

// ClientAssertion returns a new signed client assertion (RFC 7523 §3) for
// the client: typ client-authentication+jwt, the key's alg and kid;
// iss = sub = client ID, aud = the issuer, iat = nbf = now,
// exp = now + the assertion lifetime and a random jti, so that each
// assertion can be used once. With details it carries assertion_details: a
// bare object for one entry, an array for several, as NHN's libraries
// write it.
//
// Token, Exchange and Refresh build their own assertions; this is for
// requests the package does not make, such as to a pushed authorization
// request or introspection endpoint.
func (c *Client) ClientAssertion(details ...helseid.Detail) (string, error) {
	now := c.now()
	claims := assertionClaims{
		Issuer:    c.clientID,
		Subject:   c.clientID,
		Audience:  c.issuer,
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		Expiry:    now.Add(c.lifetime).Unix(),
		ID:        jws.NewJTI(),
	}
	if len(details) > 0 {
		d, err := helseid.MarshalDetails(details)
		if err != nil {
			return "", fmt.Errorf("client: assertion details: %w", err)
		}
		claims.AssertionDetails = d
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("client: assertion: %w", err)
	}
	obj, err := c.assertion.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("client: sign assertion: %w", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("client: sign assertion: %w", err)
	}
	return s, nil
}
