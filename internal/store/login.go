package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Login state: the short-lived records of the OpenID Connect front
// channel. They are store records like refresh tokens, spent atomically
// and swept when they expire, never registry kinds: the registry is
// snapshotted to every instance, and these change with every login.
//
// The values a browser or a client holds (a request_uri, a code, a session
// cookie, an upstream state) are bearer secrets: the store keeps only
// their SecretID, so that a copy of the database logs no one in.

// SecretID is the store ID of a bearer secret: base64url of its SHA-256.
// The values are random with at least 128 bits, so a plain hash leaves
// nothing to guess.
func SecretID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PurposeLogin is the service secret of the login pages (keys.Secret):
// their CSRF tokens and login transactions are keyed by keys derived from
// it.
const PurposeLogin KeyPurpose = "login"

// PurposeNames is the service secret that seals the names an identity
// provider gave into access tokens, for userinfo (token.NameSealer).
const PurposeNames KeyPurpose = "names"

// Login is who logged in, as an identity provider said it: what ID
// tokens, access tokens and userinfo say about the person.
type Login struct {
	// Subject is the person's sub (a pseudonym of the pid).
	Subject string `json:"sub"`
	PID     string `json:"pid"`
	// SecurityLevel is "3" or "4" (helseid://claims/identity/security_level).
	SecurityLevel string `json:"security_level"`
	// HPRNumber is the person's HPR number; empty when not health
	// personnel.
	HPRNumber string   `json:"hpr_number,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	// AuthTime is when the person authenticated at the identity provider.
	AuthTime time.Time `json:"-"`
	// IdP is the name of the identity provider.
	IdP string `json:"idp"`
	// Names are the person's names as the identity provider gave them;
	// empty when it gave none.
	Names Names `json:"names,omitzero"`
}

// Names are a person's names as an identity provider gave them. Full is
// the whole name, when the provider gives it as one claim.
type Names struct {
	Given  string `json:"given,omitempty"`
	Middle string `json:"middle,omitempty"`
	Family string `json:"family,omitempty"`
	Full   string `json:"full,omitempty"`
}

// loginJSON is Login as stored: auth_time in unix microseconds, so that
// it reads back in UTC at the store's precision.
type loginJSON struct {
	loginFields
	AuthTime int64 `json:"auth_time"`
}

type loginFields Login

// MarshalJSON writes auth_time as unix microseconds.
func (l Login) MarshalJSON() ([]byte, error) {
	return json.Marshal(loginJSON{loginFields(l), l.AuthTime.UnixMicro()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (l *Login) UnmarshalJSON(b []byte) error {
	var v loginJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = Login(v.loginFields)
	l.AuthTime = time.UnixMicro(v.AuthTime).UTC()
	return nil
}

// PushedRequest is a pushed authorization request (RFC 9126): what a
// client sent to the PAR endpoint, kept until the browser brings its
// request_uri to the authorization endpoint. It is single use and bound to
// the client that pushed it.
type PushedRequest struct {
	// ID is SecretID of the request_uri.
	ID       string
	ClientID string
	// JKT is the thumbprint of the DPoP key of the PAR request (RFC 9449
	// §10), which the code must later be redeemed with; empty without DPoP.
	JKT string
	// Params are the validated pushed parameters, written and read by the
	// authorization endpoint; the store keeps them as opaque bytes.
	Params    []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// ConsumedAt is set by the store when the request is consumed.
	ConsumedAt time.Time
}

// AuthorizationCode is an authorization code as stored: everything the
// token endpoint needs to redeem it. It is single use.
type AuthorizationCode struct {
	// ID is SecretID of the code.
	ID            string
	ClientID      string
	RedirectURI   string
	CodeChallenge string // PKCE S256 challenge
	// JKT binds redemption to a DPoP key; empty when the login was not
	// bound to one.
	JKT string
	// SessionID is the ID of the browser session the code was issued in
	// (the sid of the ID token derives from it).
	SessionID string
	Login     Login
	Scopes    []string
	Resources []string
	Nonce     string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Redemption is set by the store when the code is redeemed: what the
	// first redemption issued.
	Redemption *CodeRedemption
}

// CodeRedemption is what redeeming a code issued, kept with the code so
// that a second redemption can take it back (RFC 6749 §4.1.2): the
// refresh token family to revoke and the tokens to record as revoked.
type CodeRedemption struct {
	// At is when the code was redeemed; the store sets it.
	At time.Time `json:"-"`
	// RefreshFamilyID is the family of the refresh token issued; empty if
	// none was.
	RefreshFamilyID string `json:"refresh_family_id,omitempty"`
	// TokenIDs are the jtis of the tokens issued.
	TokenIDs []string `json:"token_ids,omitempty"`
}

// codeDoc is the part of an AuthorizationCode that backends keep as one
// JSON document; the rest are columns they query.
type codeDoc struct {
	RedirectURI   string   `json:"redirect_uri"`
	CodeChallenge string   `json:"code_challenge"`
	JKT           string   `json:"jkt,omitempty"`
	SessionID     string   `json:"sid,omitempty"`
	Login         Login    `json:"login"`
	Scopes        []string `json:"scopes,omitempty"`
	Resources     []string `json:"resources,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
}

// CodeDocument encodes the part of c that backends keep as a document.
func CodeDocument(c AuthorizationCode) (string, error) {
	b, err := json.Marshal(codeDoc{c.RedirectURI, c.CodeChallenge, c.JKT, c.SessionID, c.Login, c.Scopes, c.Resources, c.Nonce})
	if err != nil {
		return "", fmt.Errorf("store: encode authorization code: %w", err)
	}
	return string(b), nil
}

// DecodeCodeDocument fills c's document part from what CodeDocument wrote.
func DecodeCodeDocument(c *AuthorizationCode, doc string) error {
	var d codeDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return fmt.Errorf("store: decode authorization code: %w", err)
	}
	c.RedirectURI, c.CodeChallenge, c.JKT, c.SessionID = d.RedirectURI, d.CodeChallenge, d.JKT, d.SessionID
	c.Login, c.Scopes, c.Resources, c.Nonce = d.Login, d.Scopes, d.Resources, d.Nonce
	return nil
}

// Session is a person's login at Tillit, named by the session cookie. It
// lets a second client log the person in without asking again, and says
// which clients end-session must tell.
type Session struct {
	// ID is SecretID of the cookie's value.
	ID    string
	Login Login
	// Clients are the IDs of the clients that got tokens in the session,
	// in the order they first did; the store adds to it.
	Clients   []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// UpstreamLogin is Tillit's side of a login it started at an upstream
// identity provider, kept until the provider redirects back with state.
type UpstreamLogin struct {
	// ID is SecretID of the state parameter sent upstream.
	ID string
	// IdP is the name of the identity provider.
	IdP   string
	Nonce string
	// CodeVerifier is the PKCE verifier for the upstream code.
	CodeVerifier string
	// Return says where to go on when the person comes back (the pending
	// authorization request), written and read by the front channel; the
	// store keeps it as opaque bytes.
	Return     []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt time.Time
}
