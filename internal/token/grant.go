package token

import (
	"context"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// grant fills in a token for one grant_type. It is called after the client
// is authenticated and the DPoP proof (if any) is verified, and must not
// spend anything: the pipeline does that once the grant has said yes. A
// grant holds what it needs beyond the request (stores, keys) itself.
type grant interface {
	issue(ctx context.Context, t *tokenRequest) (*issue, error)
}

// tokenRequest is what the pipeline hands a grant: a request that has
// passed authentication, and the registry snapshot it is decided against.
type tokenRequest struct {
	*Request
	Client    *registry.Client
	Snapshot  *registry.Snapshot
	Assertion *clientauth.Assertion
	Proof     *dpop.Proof // nil without DPoP
	Now       time.Time
}

// issue is a grant's answer: what the token says.
type issue struct {
	API      *store.API
	Scopes   []string
	Claims   AccessClaims // iss, times, jti and cnf are filled in by the pipeline
	Lifetime time.Duration
	// RejectedScopes were asked for and left out because the organisation
	// has not accepted their API's terms of use (profile §6.3).
	RejectedScopes []string
	// IssuedTokenType is the issued_token_type of token exchange
	// (RFC 8693 §2.2.1); empty for the other grants.
	IssuedTokenType string
	// Rotate is the refresh token the grant spends and its successor. The
	// pipeline rotates only after everything else has passed.
	Rotate *rotation
	// Start is the first refresh token of a login (authorization_code
	// with offline_access), created before the decision is committed.
	Start *newFamily
	// Redeem is the authorization code the grant spends, once the
	// decision is committed.
	Redeem *codeRedemption
	// IDToken is the ID token to issue with the access token, signed in
	// the client's ID-token algorithm with the access token's at_hash; nil
	// for none.
	IDToken *idTokenPlan
}

// rotation replaces a refresh token by its successor in the same family.
type rotation struct {
	OldID string
	Next  store.RefreshToken
	// Value is the successor's value, sent to the client and never stored.
	Value string
}
