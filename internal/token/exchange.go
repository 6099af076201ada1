package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/oauth"
)

// maxExchangeDepth is how many times a token may be exchanged, counted in
// act levels.
const maxExchangeDepth = 3

// severalExchangeScopes is HelseID's text for downstream scopes of several
// APIs (profile §4.6).
const severalExchangeScopes = "invalid scopes requested"

// tokenExchange is RFC 8693 token exchange as HelseID does it for SFM
// (profile §4.6): an API's own client (the actor) swaps a token a client
// (the subject) sent it for a token to a downstream API that still says who
// the subject is and that the actor exchanged it.
//
// Who may exchange: a client that owns the subject token's audience and has
// the grant (the pipeline checks the grant), and that the subject client
// allows as an actor, by its list or by the API's default. The error texts
// are HelseID's.
type tokenExchange struct {
	issuer string
	// publicKeys verify subject tokens (Config.PublicKeys).
	publicKeys func() jose.JSONWebKeySet
}

func (g tokenExchange) issue(_ context.Context, t *tokenRequest) (*issue, error) {
	f := t.Form
	switch {
	case f.Has("actor_token") || f.Has("actor_token_type"):
		return nil, oauth.InvalidRequest("actor_token is not supported: the actor is the authenticated client")
	case f.Has("audience"):
		return nil, oauth.InvalidRequest("audience is not supported: name the downstream API with scope (or resource)")
	case f.Has("requested_token_type") && f.Get("requested_token_type") != oauth.TokenTypeAccessToken:
		return nil, oauth.InvalidRequest("requested_token_type must be " + oauth.TokenTypeAccessToken)
	case f.Get("subject_token") == "":
		return nil, oauth.InvalidRequest("subject_token is missing")
	case f.Get("subject_token_type") == "":
		return nil, oauth.InvalidRequest("subject_token_type is missing")
	case f.Get("subject_token_type") != oauth.TokenTypeAccessToken:
		return nil, oauth.InvalidRequest("subject_token_type must be " + oauth.TokenTypeAccessToken)
	case len(t.Resources) > 1:
		return nil, oauth.InvalidTarget("name one resource: a token is for one API")
	}

	// The subject token: issued by this service and valid now. It may be
	// bound to the subject client's DPoP key, which the actor cannot prove
	// (profile §4.6); its binding says nothing about this request.
	subject, err := verifyAccessToken(f.Get("subject_token"), g.publicKeys(), g.issuer, t.Now)
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, oauth.InvalidRequest("invalid subject_token - " + te.Reason).Wrap(err)
		}
		return nil, err
	}
	sub := &subject.Claims
	actor := t.Client
	// Only the owner of the API the subject token is for may exchange it.
	subjectAPI, ok := t.Snapshot.API(sub.Audience)
	if !ok || !slices.Contains(subjectAPI.Owners, actor.ID) {
		return nil, oauth.Newf(oauth.CodeInvalidRequest, "no audience matching configuration owner of client_id %s was found in subject token", actor.ID)
	}
	subjectClient, ok := t.Snapshot.Client(sub.ClientID)
	if !ok || !subjectClient.Active() {
		return nil, oauth.InvalidRequest("invalid subject_token - the client it was issued to is unknown or not active")
	}
	// For a token exchanged before, the subject client is the previous
	// actor (its client_id); it is the one that must allow this actor.
	if !subjectAPI.ExchangeByDefault && !slices.Contains(subjectClient.ExchangeActors, actor.ID) {
		return nil, oauth.InvalidRequest("not permitted")
	}
	if sub.Act.depth() >= maxExchangeDepth {
		return nil, oauth.Newf(oauth.CodeInvalidRequest, "subject_token exchanged too many times (%d)", maxExchangeDepth)
	}

	// The downstream API and its scopes, from the actor's own allowance.
	requested := splitScopes(t.Scope)
	for _, s := range requested {
		if identityScope(s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s is not an API scope: token exchange issues a token for one downstream API", s)
		}
		if !slices.Contains(actor.Scopes, s) {
			return nil, oauth.Newf(oauth.CodeInvalidScope, "scope %s is not allowed for this client", s)
		}
	}
	// The organisation the actor acts for goes into act.
	org, err := selectOrganization(t.Snapshot, actor, t.Assertion, nil)
	if err != nil {
		return nil, err
	}
	choice, err := chooseAPI(t, org, requested, actor.Scopes, severalExchangeScopes, severalClientScopes)
	if err != nil {
		return nil, err
	}

	// The token keeps the subject's identity and helseid:// client claims;
	// client_id is the actor, and act says who exchanged it.
	c := AccessClaims{
		ClientID:         actor.ID,
		Identity:         sub.Identity,
		ClientAMR:        helseid.ClientAMRPrivateKeyJWT,
		HelseIDClientAMR: sub.HelseIDClientAMR,
		ClientName:       sub.ClientName,
		ClientTenancy:    sub.ClientTenancy,
		OrgNrParent:      sub.OrgNrParent,
		OrgNrChild:       sub.OrgNrChild,
		OrgNrSupplier:    sub.OrgNrSupplier,
		OriginalClientID: sub.OriginalClientID,
		Act: &Actor{
			Issuer:      g.issuer,
			ClientID:    actor.ID,
			OrgNrParent: org.Parent,
			OrgNrChild:  org.Child,
			Act:         sub.Act,
		},
	}
	if c.OriginalClientID == "" {
		c.OriginalClientID = sub.ClientID
	}
	// API-specific claims of the subject cross only to an API that accepts
	// them.
	for _, name := range choice.api.SubjectClaims {
		if name == helseid.ClaimSFMJournalID {
			c.SFMJournalID = sub.SFMJournalID
			continue
		}
		rawValue, ok := subject.Raw[name]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(rawValue, &v); err != nil {
			return nil, fmt.Errorf("token: subject claim %s is not a string: %w", name, err)
		}
		if c.APIClaims == nil {
			c.APIClaims = map[string]string{}
		}
		c.APIClaims[name] = v
	}
	return &issue{
		API:            choice.api,
		Scopes:         choice.scopes,
		RejectedScopes: choice.rejected,
		Claims:         c,
		// An exchanged token does not outlive its subject: the subject's
		// lifetime was what the login or the first client was given.
		Lifetime:        time.Unix(sub.Expiry, 0).Sub(t.Now),
		IssuedTokenType: oauth.TokenTypeAccessToken,
	}, nil
}
