package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// RefreshStore keeps refresh tokens (store.Store).
type RefreshStore interface {
	RefreshToken(ctx context.Context, id string) (store.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, now time.Time, oldID string, next store.RefreshToken) error
	RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error)
}

// RefreshGrant is what the refresh tokens of one login may be exchanged
// for: what the login granted. Every refresh token of the family carries it
// (store.RefreshToken.Grant, as JSON); the login that starts a family (the
// authorization_code grant) writes it, and refreshing never changes it.
type RefreshGrant struct {
	// Scopes granted at login: API scopes of one or more APIs, identity
	// scopes and offline_access. A refresh may ask for fewer, never more.
	Scopes []string `json:"scope"`
	// Resources are the APIs named at login with resource (RFC 8707); a
	// refresh may name only these. Empty: any API of Scopes.
	Resources []string `json:"resource,omitempty"`
	// Identity is the user, as the login established it.
	Identity Identity `json:"identity"`
	// Names are the profile claims of the login's ID token, which the ID
	// tokens of refreshes repeat; nil without them, and in families
	// started before refreshes had ID tokens (those then carry no names).
	Names *identity.Profile `json:"names,omitempty"`
	// OrgNrParent and OrgNrChild are the organisation named at login (in a
	// request object); a refresh whose assertion names none acts for it.
	OrgNrParent string `json:"orgnr_parent,omitempty"`
	OrgNrChild  string `json:"orgnr_child,omitempty"`
}

// NewRefreshTokenValue returns a new refresh token: 256 random bits,
// base64url, opaque to the client.
func NewRefreshTokenValue() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("token: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RefreshTokenID is the store ID of a refresh token: base64url of the
// SHA-256 of its value. The value itself is never stored, so a copy of the
// database holds no usable refresh token. A plain hash suffices: the value
// has 256 random bits, so there is nothing to guess.
func RefreshTokenID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The invalid_grant descriptions that more than one place gives.
const (
	refreshUnknown = "refresh_token is not valid"
	refreshReused  = "refresh_token was already used: every refresh token of this login is now revoked"
)

// refreshGrant is grant_type=refresh_token (RFC 6749 §6, profile §4.4 and
// §4.5): one login, then one single-audience token per API, each refresh
// spending its refresh token for a new one (rotation). A new client
// assertion may name another organisation (profile §6.2).
type refreshGrant struct {
	tokens RefreshStore
	log    *slog.Logger
}

func (g refreshGrant) issue(ctx context.Context, t *tokenRequest) (*issue, error) {
	value := t.Form.Get("refresh_token")
	if value == "" {
		return nil, oauth.InvalidRequest("refresh_token is missing")
	}
	if len(t.Resources) > 1 {
		return nil, oauth.InvalidTarget("name one resource: a token is for one API")
	}
	old, err := g.tokens.RefreshToken(ctx, RefreshTokenID(value))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, oauth.InvalidGrant(refreshUnknown)
	case err != nil:
		return nil, err
	case old.ClientID != t.Client.ID:
		return nil, oauth.InvalidGrant("refresh_token was issued to another client")
	case old.Status == store.RefreshRotated && mayRetry(old, t):
		// Perhaps a client retrying a refresh whose answer it never got
		// (a 503 after an unknown outcome): the commit rotates it once
		// more if the store's retry grace allows, and takes it for reuse
		// otherwise, revoking the family in the same transaction.
	case old.Status == store.RefreshRotated:
		// A spent token came back: either the client or a thief holds a
		// copy, and which one cannot be told, so the whole login goes
		// (RFC 9700 §4.14.2). This is a refusal's only side effect: it
		// spends nothing of the request.
		n, err := g.tokens.RevokeRefreshFamily(ctx, old.FamilyID)
		if err != nil {
			return nil, err
		}
		g.log.Warn("refresh token reused; family revoked", "request_id", requestid.From(ctx),
			"client_id", t.Client.ID, "family", old.FamilyID, "revoked", n)
		return nil, oauth.InvalidGrant(refreshReused)
	case old.Status == store.RefreshRevoked:
		return nil, oauth.InvalidGrant("refresh_token has been revoked")
	case !old.ExpiresAt.After(t.Now):
		return nil, oauth.InvalidGrant("refresh_token has expired")
	}
	// RFC 9449 §5: a refresh token bound to a key is used with a proof of
	// that key. A Bearer refresh token stays Bearer: the family keeps the
	// binding its login had.
	if old.JKT != "" {
		if t.Proof == nil {
			return nil, oauth.InvalidGrant("refresh_token is bound to a DPoP key: send a DPoP proof made with that key")
		}
		if t.Proof.Thumbprint != old.JKT {
			return nil, oauth.InvalidGrant("the DPoP proof is not made with the key the refresh_token is bound to")
		}
	}
	var grant RefreshGrant
	if err := json.Unmarshal(old.Grant, &grant); err != nil {
		return nil, fmt.Errorf("token: refresh token family %s: grant: %w", old.FamilyID, err)
	}

	// Scopes: the login's, or fewer. Identity scopes stay with every
	// token; the API scopes must still be allowed for the client, whose
	// configuration may have changed since the login.
	requested := splitScopes(t.Scope)
	for _, s := range requested {
		if !slices.Contains(grant.Scopes, s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s was not granted to this refresh_token", s)
		}
		if !identityScope(s) && !slices.Contains(t.Client.Scopes, s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s is not allowed for this client", s)
		}
	}
	base := requested
	if len(base) == 0 {
		base = grant.Scopes
	}
	var idScopes, apiScopes []string
	for _, s := range base {
		switch {
		case identityScope(s):
			idScopes = append(idScopes, s)
		case slices.Contains(t.Client.Scopes, s):
			apiScopes = append(apiScopes, s)
		}
	}
	if len(t.Resources) == 1 && len(grant.Resources) > 0 && !slices.Contains(grant.Resources, t.Resources[0]) {
		return nil, oauth.Newf(oauth.CodeInvalidTarget, "resource %s was not named at login", t.Resources[0])
	}
	org, err := selectOrganization(t.Snapshot, t.Client, t.Assertion, &orgChoice{Parent: grant.OrgNrParent, Child: grant.OrgNrChild})
	if err != nil {
		return nil, err
	}
	var choice apiChoice
	if len(requested) > 0 {
		if len(apiScopes) == 0 {
			return nil, oauth.InvalidScope("name at least one API scope: an access token is for one API")
		}
		choice, err = chooseAPI(t, org, apiScopes, nil, severalRequested, "")
	} else {
		if len(apiScopes) == 0 {
			return nil, oauth.InvalidScope("this refresh_token was granted no API scopes this client may still have")
		}
		choice, err = chooseAPI(t, org, nil, apiScopes, severalRequested, severalRefreshScopes)
	}
	if err != nil {
		return nil, err
	}

	c := clientClaims(t, choice.api, org)
	c.Identity = grant.Identity
	next := store.RefreshToken{
		FamilyID: old.FamilyID,
		ClientID: old.ClientID,
		JKT:      old.JKT,
		Grant:    old.Grant,
		IssuedAt: t.Now,
		// The family's lifetime is absolute: rotation never extends it.
		ExpiresAt: old.ExpiresAt,
	}
	newValue := NewRefreshTokenValue()
	next.ID = RefreshTokenID(newValue)
	is := &issue{
		API:            choice.api,
		Scopes:         append(idScopes, choice.scopes...),
		RejectedScopes: choice.rejected,
		Claims:         c,
		Rotate:         &rotation{OldID: old.ID, Next: next, Value: newValue},
	}
	// OpenID Connect Core §12.2: a refresh of a login with openid may get
	// an ID token, and HelseID's clients expect one. It names the same
	// person, login time and session as the login's (the family keeps
	// them), carries no nonce, and binds the new access token by at_hash.
	// A refresh that narrows scope without openid gets none.
	if slices.Contains(idScopes, helseid.ScopeOpenID) {
		is.IDToken = &idTokenPlan{Person: grant.idTokenClaims()}
	}
	return is, nil
}

// idTokenClaims are the person claims of the ID token of a refresh: the
// login's, as its access token has them (which the login's ID token has
// too), and the names of its ID token.
func (g *RefreshGrant) idTokenClaims() *identity.Claims {
	id := g.Identity
	return &identity.Claims{
		Subject:        id.Subject,
		AuthTime:       id.AuthTime,
		IDP:            id.IDP,
		AMR:            id.AMR,
		SID:            id.SID,
		PID:            id.PID,
		PIDPseudonym:   id.PIDPseudonym,
		SecurityLevel:  id.SecurityLevel,
		AssuranceLevel: id.AssuranceLevel,
		Network:        id.Network,
		HPRNumber:      id.HPRNumber,
		Profile:        g.Names,
	}
}

// mayRetry reports whether a rotated token may be within the store's retry
// grace (store.RefreshRetryGrace) for this request: bound to a DPoP key,
// presented with a proof of that key, and rotated less than the grace ago.
// The store decides the rest (the successor never used, no retry before)
// when the rotation is committed. A rotated token from anyone without the
// key is reuse at once, as it always was.
func mayRetry(old store.RefreshToken, t *tokenRequest) bool {
	return old.JKT != "" && t.Proof != nil && t.Proof.Thumbprint == old.JKT &&
		t.Now.Before(old.UsedAt.Add(store.RefreshRetryGrace))
}

// severalRefreshScopes answers a refresh that names no API when the login
// granted scopes of several (profile §4.5: one token per API).
const severalRefreshScopes = "the refresh_token was granted scopes for several APIs: name one with resource= (RFC 8707) or scope="

// rotationError maps a refused rotation: another request with the same
// refresh token got there first (and the store has revoked the family, as
// for any reuse), or the token was revoked or expired meanwhile.
func rotationError(err error) error {
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		return oauth.InvalidGrant(refreshReused).Wrap(err)
	case errors.Is(err, store.ErrRevoked):
		return oauth.InvalidGrant("refresh_token has been revoked or has expired").Wrap(err)
	case errors.Is(err, store.ErrNotFound):
		return oauth.InvalidGrant(refreshUnknown).Wrap(err)
	}
	return err
}
