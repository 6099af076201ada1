package token

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// CodeStore keeps authorization codes and the refresh tokens their
// redemption starts (store.Store).
type CodeStore interface {
	AuthorizationCode(ctx context.Context, now time.Time, id string) (store.AuthorizationCode, error)
	RedeemAuthorizationCode(ctx context.Context, now time.Time, id string, r store.CodeRedemption) (store.AuthorizationCode, error)
	CreateRefreshToken(ctx context.Context, t store.RefreshToken) error
	RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error)
}

// The invalid_grant descriptions of codes.
const (
	codeUnknown = "code is not valid or has expired"
	codeReused  = "code was already used: the tokens issued for it are revoked"
)

// MaxCodeVerifier and MinCodeVerifier bound code_verifier (RFC 7636 §4.1).
const (
	MinCodeVerifier = 43
	MaxCodeVerifier = 128
)

// authorizationCode is grant_type=authorization_code (RFC 6749 §4.1.3,
// RFC 7636 §4.6, profile §4.3): the code of a login, redeemed once, with
// the PKCE verifier, the redirect_uri it was sent to, by the client it was
// issued to and, when the login was bound to a DPoP key (RFC 9449 §10),
// with a proof of that key. It reads the code without spending it: the
// pipeline redeems it once everything else has passed and the decision is
// committed (codeRedemption).
type authorizationCode struct {
	codes           CodeStore
	refreshLifetime time.Duration
	log             *slog.Logger
	// pseudonymKey makes sub from the pid (identity.Pseudonym).
	pseudonymKey []byte
	persons      PersonStore
	names        *NameSealer
}

func (g authorizationCode) issue(ctx context.Context, t *tokenRequest) (*issue, error) {
	value := t.Form.Get("code")
	switch {
	case value == "":
		return nil, oauth.InvalidRequest("code is missing")
	case len(value) > 512:
		return nil, oauth.InvalidGrant(codeUnknown)
	}
	code, err := g.codes.AuthorizationCode(ctx, t.Now, store.SecretID(value))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, oauth.InvalidGrant(codeUnknown)
	case err != nil:
		return nil, err
	case code.Redemption != nil:
		// RFC 6749 §4.1.2: a code used twice takes back what the first
		// use issued. This is a refusal's only side effect: it spends
		// nothing of the request.
		if err := g.revoke(ctx, t, code.Redemption.RefreshFamilyID); err != nil {
			return nil, err
		}
		return nil, oauth.InvalidGrant(codeReused)
	case code.ClientID != t.Client.ID:
		return nil, oauth.InvalidGrant("code was issued to another client")
	}
	if err := checkVerifier(t.Form.Get("code_verifier"), code.CodeChallenge); err != nil {
		return nil, err
	}
	if !t.Form.Has("redirect_uri") {
		return nil, oauth.InvalidRequest("redirect_uri is missing: send the one the authorization request had")
	}
	if t.Form.Get("redirect_uri") != code.RedirectURI {
		return nil, oauth.InvalidGrant("redirect_uri is not the one the authorization request had")
	}
	// RFC 9449 §10: a login bound to a DPoP key is redeemed with a proof of
	// that key.
	if code.JKT != "" {
		if t.Proof == nil {
			return nil, oauth.InvalidDPoPProof("the login is bound to a DPoP key: send a DPoP proof made with that key")
		}
		if subtle.ConstantTimeCompare([]byte(t.Proof.Thumbprint), []byte(code.JKT)) != 1 {
			return nil, oauth.InvalidDPoPProof("the DPoP proof is not made with the key the login is bound to")
		}
	}

	// One audience per token (a HelseID deviation: it would issue one
	// token for every resource): the one resource sent now, which the
	// login must have named; else the first the login named; else the one
	// API its scopes belong to.
	if len(t.Resources) > 1 {
		return nil, oauth.InvalidTarget("name one resource: a token is for one API")
	}
	tr := *t
	switch {
	case len(t.Resources) == 1 && len(code.Resources) > 0 && !slices.Contains(code.Resources, t.Resources[0]):
		return nil, oauth.Newf(oauth.CodeInvalidTarget, "resource %s was not named in the authorization request", t.Resources[0])
	case len(t.Resources) == 0 && len(code.Resources) > 0:
		tr.Resources = code.Resources[:1]
	}
	var idScopes, apiScopes []string
	for _, s := range code.Scopes {
		switch {
		case identityScope(s):
			idScopes = append(idScopes, s)
		case slices.Contains(t.Client.Scopes, s):
			apiScopes = append(apiScopes, s)
		}
	}
	if len(apiScopes) == 0 {
		return nil, oauth.InvalidScope("the login was granted no API scopes this client may still have")
	}
	org, err := selectOrganization(t.Snapshot, t.Client, t.Assertion, nil)
	if err != nil {
		return nil, err
	}
	choice, err := chooseAPI(&tr, org, nil, apiScopes, severalRequested, severalLoginScopes)
	if err != nil {
		return nil, err
	}
	c := clientClaims(&tr, choice.api, org)
	person, err := g.person(ctx, t, code)
	if err != nil {
		return nil, err
	}
	sid := idtoken.SID(code.SessionID)
	at, err := personClaims(person, code.Scopes, identity.AccessToken, g.pseudonymKey)
	if err != nil {
		return nil, err
	}
	c.Identity = accessIdentity(at)
	c.Identity.SID = sid
	// The provider's names go with the token, sealed, for userinfo; the
	// register's are read there when asked, so a correction shows.
	if g.names != nil && code.Login.Names != (store.Names{}) && person.Names != (identity.Names{}) {
		if c.Identity.Names, err = g.names.seal(person.Names, c.Identity.Subject); err != nil {
			return nil, fmt.Errorf("token: seal names: %w", err)
		}
	}
	is := &issue{
		API:            choice.api,
		Scopes:         append(idScopes, choice.scopes...),
		RejectedScopes: choice.rejected,
		Claims:         c,
		Redeem:         &codeRedemption{ID: code.ID},
	}
	// OpenID Connect Core §3.1.3.3: a login with openid gets an ID token
	// (and each refresh of it another, see the refresh grant).
	var names *identity.Profile
	if slices.Contains(code.Scopes, helseid.ScopeOpenID) {
		claims, err := personClaims(person, code.Scopes, identity.IDToken, g.pseudonymKey)
		if err != nil {
			return nil, err
		}
		is.IDToken = &idTokenPlan{Person: claims, Nonce: code.Nonce, SessionID: sid}
		names = claims.Profile
	}
	if slices.Contains(code.Scopes, "offline_access") && slices.Contains(t.Client.GrantTypes, oauth.GrantTypeRefreshToken) {
		if is.Start, err = g.family(t, code, c.Identity, names, org); err != nil {
			return nil, err
		}
	}
	return is, nil
}

// severalLoginScopes answers a code redemption that names no API when the
// login named none with resource and granted scopes of several.
const severalLoginScopes = "the login was granted scopes for several APIs: name one with resource= (RFC 8707)"

// checkVerifier is PKCE (RFC 7636 §4.6) with S256, the only method the
// authorization endpoint accepts.
func checkVerifier(verifier, challenge string) error {
	if verifier == "" {
		return oauth.InvalidRequest("code_verifier is missing")
	}
	if len(verifier) < MinCodeVerifier || len(verifier) > MaxCodeVerifier {
		return oauth.InvalidGrant("code_verifier must be 43 to 128 characters (RFC 7636 §4.1)")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
		return oauth.InvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// person is who the code's login says logged in, completed from the
// registers: the HPR number from the login (TestIDP may name one) or else
// the HPR entry of the pid, when a scope asks for it; the names from the
// person register, when profile asks for them (only ID tokens and
// userinfo carry them, so an access token costs no store read).
func (g authorizationCode) person(ctx context.Context, t *tokenRequest, code store.AuthorizationCode) (identity.Person, error) {
	return completePerson(ctx, t.Snapshot, g.persons, code.Login, code.Scopes)
}

// family is the first refresh token of the login, for offline_access: it
// carries what the login granted, for the refresh grant to take further
// APIs from (profile §4.5), and the names of its ID token, for the ID
// tokens of refreshes.
func (g authorizationCode) family(t *tokenRequest, code store.AuthorizationCode, id Identity, names *identity.Profile, org organization) (*newFamily, error) {
	grant, err := json.Marshal(RefreshGrant{
		Scopes:      code.Scopes,
		Resources:   code.Resources,
		Identity:    id,
		Names:       names,
		OrgNrParent: org.Parent,
		OrgNrChild:  org.Child,
	})
	if err != nil {
		return nil, fmt.Errorf("token: refresh grant: %w", err)
	}
	lifetime := t.Client.RefreshTokenLifetime
	if lifetime <= 0 {
		lifetime = g.refreshLifetime
	}
	value := NewRefreshTokenValue()
	jkt := ""
	if t.Proof != nil {
		jkt = t.Proof.Thumbprint
	}
	return &newFamily{Value: value, Token: store.RefreshToken{
		ID:        RefreshTokenID(value),
		FamilyID:  newTokenID(),
		ClientID:  t.Client.ID,
		JKT:       jkt,
		Grant:     grant,
		IssuedAt:  t.Now,
		ExpiresAt: t.Now.Add(lifetime),
	}}, nil
}

// revoke takes back the refresh family a code's first redemption started.
func (g authorizationCode) revoke(ctx context.Context, t *tokenRequest, family string) error {
	if family == "" {
		return nil
	}
	n, err := g.codes.RevokeRefreshFamily(ctx, family)
	if err != nil {
		return err
	}
	g.log.Warn("authorization code reused; refresh family revoked", "request_id", requestid.From(ctx),
		"client_id", t.Client.ID, "family", family, "revoked", n)
	return nil
}

// codeRedemption is the code a grant spends once its decision is
// committed.
type codeRedemption struct {
	ID string
}

// newFamily is the first refresh token of a login.
type newFamily struct {
	Token store.RefreshToken
	// Value is sent to the client and never stored.
	Value string
}

// redeem spends the code of a committed decision, last, so that a request
// refused for any other reason has not spent it. Two redemptions that
// passed every check together are told apart here: the store lets one
// win, and the other is a reuse, which takes back what both issued.
func (e *Endpoint) redeem(ctx context.Context, t *tokenRequest, is *issue, now time.Time) error {
	own := familyOf(is)
	first, err := e.codes.RedeemAuthorizationCode(ctx, now, is.Redeem.ID, store.CodeRedemption{
		RefreshFamilyID: own,
		TokenIDs:        []string{is.Claims.JTI},
	})
	if err == nil {
		return nil
	}
	// Nothing of this answer reaches the client: take back its family.
	if own != "" {
		if _, rerr := e.codes.RevokeRefreshFamily(ctx, own); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	switch {
	case errors.Is(err, store.ErrReplay):
		// The store returns the code with what the first redemption
		// issued.
		if first.Redemption != nil && first.Redemption.RefreshFamilyID != "" {
			if _, rerr := e.codes.RevokeRefreshFamily(ctx, first.Redemption.RefreshFamilyID); rerr != nil {
				return rerr
			}
		}
		e.cfg.Log.Warn("authorization code redeemed twice at once; both answers revoked", "request_id", requestid.From(ctx),
			"client_id", t.Client.ID)
		return oauth.InvalidGrant(codeReused).Wrap(err)
	case errors.Is(err, store.ErrNotFound):
		return oauth.InvalidGrant(codeUnknown).Wrap(err)
	}
	return err
}
