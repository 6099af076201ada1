package token

import (
	"errors"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// RevocationPath is where the revocation endpoint is mounted (profile §1.2).
const RevocationPath = "/connect/revocation"

// Revocation is the token revocation endpoint (RFC 7009) for refresh
// tokens: a client revokes one of its refresh tokens, and with it every
// refresh token of the same login (the family), as a logout does. Access
// tokens are self-contained JWTs that no API asks about, so they cannot be
// revoked: they expire.
type Revocation struct {
	base
	tokens     RefreshStore
	publicKeys func() jose.JSONWebKeySet
}

// RevocationConfig wires the revocation endpoint.
type RevocationConfig struct {
	Shared
	// Refresh keeps the refresh tokens to revoke. Required.
	Refresh RefreshStore
	// PublicKeys returns the published signing keys (keys.Manager.JWKS).
	// With them an access token sent for revocation is told apart and
	// refused as unsupported_token_type; nil answers it as a token the
	// service does not know.
	PublicKeys func() jose.JSONWebKeySet
}

// NewRevocation returns the endpoint. Client assertions may name its URL as
// aud, as well as the audiences of cfg.Assertions.
func NewRevocation(cfg RevocationConfig) *Revocation {
	if cfg.Refresh == nil {
		panic("token: NewRevocation without Refresh")
	}
	return &Revocation{
		base:       newBase(cfg.Shared, endpointRevocation, RevocationPath),
		tokens:     cfg.Refresh,
		publicKeys: cfg.PublicKeys,
	}
}

// Mount registers the endpoint for every method, so that a wrong method gets
// an OAuth error.
func (e *Revocation) Mount(mux *http.ServeMux) { mux.Handle(RevocationPath, e) }

func (e *Revocation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // the real clock: metrics time requests
	d := &decision{}
	if err := e.handle(w, r, d); err != nil {
		e.refuse(w, r, d, err, "", start)
		return
	}
	// RFC 7009 §2.2: 200 with no content, also for a token that was not
	// valid: the client's aim, that the token be unusable, holds.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	e.cfg.Metrics.Request(endpointRevocation, "", "ok", time.Since(start))
}

// handle revokes in the commit that spends the assertion and records the
// answer, so that a replayed assertion revokes nothing and no revocation
// goes unrecorded. It fills in d as it learns who asks, for the record of a
// refusal.
func (e *Revocation) handle(w http.ResponseWriter, r *http.Request, d *decision) error {
	now := e.cfg.Now()
	if err := e.limitAddress(r, now); err != nil {
		return err
	}
	req, err := parseRequest(w, r, e.cfg.MaxBody, e.name)
	if err != nil {
		return err
	}
	snap := e.cfg.Registry()
	client, assertion, err := e.authenticate(req, snap, now)
	if err != nil {
		return err
	}
	d.clientID, d.authenticated = client.ID, true
	if err := e.limitClient(client.ID, now); err != nil {
		return err
	}
	raw := req.Form.Get("token")
	if raw == "" {
		return oauth.InvalidRequest("token is missing")
	}
	// token_type_hint is only a hint (RFC 7009 §2.1): refresh tokens are
	// looked up whatever it says.
	rt, err := e.tokens.RefreshToken(r.Context(), RefreshTokenID(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		if e.publicKeys != nil {
			if _, err := verifyAccessToken(raw, e.publicKeys(), e.cfg.Issuer, now); err == nil {
				return oauth.New(oauth.CodeUnsupportedTokenType, "access tokens cannot be revoked: they are self-contained and expire (expires_in)")
			}
		}
		// Not a token of this service, or one already gone: nothing
		// to revoke, and the client is told it is done (RFC 7009 §2.2).
		return e.commitAnswer(r, d, client, assertion, audit.OutcomeUnknownToken, "")
	case err != nil:
		return err
	case rt.ClientID != client.ID:
		// RFC 7009 §2.1: a client revokes only its own tokens; RFC 6749
		// §5.2 names this case invalid_grant.
		return oauth.InvalidGrant("the token was issued to another client")
	}
	// The record names the family revoked, as the token ID, so that an
	// operator can tie it to the refresh grants that used it.
	d.tokenID = rt.FamilyID
	if err := e.commitAnswer(r, d, client, assertion, audit.OutcomeRevoked, rt.FamilyID); err != nil {
		d.tokenID = "" // nothing revoked
		return err
	}
	e.cfg.Log.Info("refresh token family revoked", "request_id", requestid.From(r.Context()),
		"client_id", client.ID, "family", rt.FamilyID)
	return nil
}
