package idtoken

import (
	"crypto"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 for at_hash
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/jws"
)

// DefaultLifetime is how long an ID token is valid when Params.Lifetime is
// zero. An ID token is read once, by the client, right after the code
// redemption; five minutes covers clock skew without making a leaked token
// useful for long.
const DefaultLifetime = 5 * time.Minute

// DefaultAlgorithm signs a client's ID tokens unless it registered another
// (id_token_signed_response_alg, OpenID Connect Dynamic Client Registration
// §2): RS256, which OpenID Connect Core §15.1 requires of every provider and
// HelseID signs with.
const DefaultAlgorithm = jose.RS256

// Algorithms are the algorithms a client may ask its ID tokens to be signed
// with: the asymmetric algorithms Tillit accepts anywhere (jws.Algorithms),
// each of which has an at_hash. Never none and never HS*: an HMAC ID token
// would be keyed with something the client can read, so anyone holding it
// could forge tokens.
var Algorithms = slices.Clone(jws.Algorithms)

// Supported reports whether alg is one of Algorithms.
func Supported(alg jose.SignatureAlgorithm) bool {
	if _, err := ATHash(alg, ""); err != nil {
		return false
	}
	return slices.Contains(Algorithms, alg)
}

// Signer signs an ID token's payload with the current key. *keys.Signer
// implements it.
type Signer interface {
	Algorithm() jose.SignatureAlgorithm
	SignIDToken(payload []byte) (string, error)
}

// Claims are the claims of an ID token. Field order is wire order.
type Claims struct {
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	NotBefore int64  `json:"nbf"`
	IssuedAt  int64  `json:"iat"`
	Expiry    int64  `json:"exp"`
	Nonce     string `json:"nonce,omitempty"`
	ATHash    string `json:"at_hash,omitempty"`
	identity.Claims
}

// Params is what an ID token is built from.
type Params struct {
	Issuer string
	// ClientID is the only audience: HelseID's ID tokens name the client
	// alone, never an API.
	ClientID string
	Now      time.Time
	// Lifetime is DefaultLifetime when zero.
	Lifetime time.Duration
	// Nonce is the nonce the client sent at PAR or authorize, if any.
	Nonce string
	// SessionID is the sid of the login session (OIDC Front-Channel and
	// Back-Channel Logout); it overrides Person.SID.
	SessionID string
	// AccessToken is the access token issued with the ID token; when set,
	// at_hash binds the two.
	AccessToken string
	// Person are the person's claims for identity.IDToken.
	Person *identity.Claims
}

// Issue builds the ID token for p and signs it with s. It returns the compact
// JWS and the claims it holds.
func Issue(s Signer, p Params) (string, *Claims, error) {
	switch {
	case p.Issuer == "":
		return "", nil, errors.New("idtoken: no issuer")
	case p.ClientID == "":
		return "", nil, errors.New("idtoken: no client id")
	case p.Now.IsZero():
		return "", nil, errors.New("idtoken: no time")
	case p.Person == nil || p.Person.Subject == "":
		return "", nil, errors.New("idtoken: no subject")
	}
	// The algorithms with an at_hash are the allow-list: an ID token is
	// never signed with HS* or none, with or without an access token.
	if _, err := ATHash(s.Algorithm(), ""); err != nil {
		return "", nil, err
	}
	lifetime := p.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	c := &Claims{
		Issuer:    p.Issuer,
		Audience:  p.ClientID,
		NotBefore: p.Now.Unix(),
		IssuedAt:  p.Now.Unix(),
		Expiry:    p.Now.Add(lifetime).Unix(),
		Nonce:     p.Nonce,
		Claims:    *p.Person,
	}
	if p.SessionID != "" {
		c.SID = p.SessionID
	}
	if p.AccessToken != "" {
		h, err := ATHash(s.Algorithm(), p.AccessToken)
		if err != nil {
			return "", nil, err
		}
		c.ATHash = h
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", nil, fmt.Errorf("idtoken: %w", err)
	}
	tok, err := s.SignIDToken(payload)
	if err != nil {
		return "", nil, err
	}
	return tok, c, nil
}

// ATHash is the at_hash of an access token for an ID token signed with alg
// (OIDC Core §3.1.3.6): the left half of the hash that alg uses, of the
// token's ASCII text, base64url without padding. Only the asymmetric
// algorithms Tillit signs with are known; any other is an error rather than
// a guess at its hash.
func ATHash(alg jose.SignatureAlgorithm, accessToken string) (string, error) {
	var h crypto.Hash
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		h = crypto.SHA256
	case jose.RS384, jose.PS384, jose.ES384:
		h = crypto.SHA384
	case jose.RS512, jose.PS512, jose.ES512:
		h = crypto.SHA512
	default:
		return "", fmt.Errorf("idtoken: no at_hash for algorithm %q", alg)
	}
	d := h.New()
	d.Write([]byte(accessToken))
	sum := d.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}

// SID is the sid claim of a browser session (OpenID Connect Front-Channel
// and Back-Channel Logout): 32 upper-case hex digits, HelseID's form,
// derived from the session's store ID. The session's store ID is the hash
// of its cookie, and sid is a hash of that, so a token names the session
// without carrying anything that opens it; whoever holds the session
// record (end-session, logout notices) computes the same sid. Empty for a
// login without a session.
func SID(sessionID string) string {
	if sessionID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("tillit sid\x00" + sessionID))
	return strings.ToUpper(hex.EncodeToString(sum[:16]))
}
