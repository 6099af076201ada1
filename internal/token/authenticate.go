package token

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// authenticate checks the private_key_jwt client authentication of a
// request, with the endpoint's verifier (whose Audiences name it), and
// returns the client and its verified assertion. It spends nothing: the
// assertion's jti is spent in the commit of the request's decision.
func (b *base) authenticate(req *Request, snap *registry.Snapshot, now time.Time) (*registry.Client, *clientauth.Assertion, error) {
	secret := req.Form.Has("client_secret")
	hasAssertion := req.ClientAssertion != "" || req.ClientAssertionType != ""
	basicID, basic := "", len(req.Authorization) > 0
	if basic && hasAssertion && !secret {
		// HelseID: Basic with the client's own id and an empty secret,
		// next to the assertion, is taken as no secret (see
		// basicClientID); the id is checked once the assertion names
		// the client.
		if id, ok := basicClientID(req.Authorization); ok {
			basicID, basic = id, false
		}
	}
	switch {
	case (basic || secret) && hasAssertion:
		// RFC 6749 §2.3: one authentication method per request.
		return nil, nil, oauth.InvalidRequest(twoMethods)
	case basic || secret:
		return nil, nil, oauth.InvalidClient("client secrets are not accepted: authenticate with private_key_jwt")
	case !hasAssertion:
		return nil, nil, oauth.InvalidClient("client authentication is required: private_key_jwt (client_assertion)")
	case req.ClientAssertionType != oauth.ClientAssertionTypeJWTBearer:
		return nil, nil, oauth.InvalidClient("client_assertion_type must be " + oauth.ClientAssertionTypeJWTBearer)
	}
	a, err := b.assertions.Parse(req.ClientAssertion)
	if err != nil {
		return nil, nil, assertionError(err)
	}
	if basicID != "" && basicID != a.ClientID {
		// Another client's id is another client's credentials.
		return nil, nil, oauth.InvalidRequest(twoMethods)
	}
	if req.ClientID != "" && req.ClientID != a.ClientID {
		return nil, nil, oauth.InvalidClient("client_id does not match the client_assertion")
	}
	c, ok := snap.Client(a.ClientID)
	switch {
	case !ok:
		return nil, nil, oauth.InvalidClient("unknown client")
	case c.Err() != nil:
		return nil, nil, oauth.InvalidClient("the client's registration cannot be used").Wrap(c.Err())
	case c.Status == store.StatusPending:
		return nil, nil, oauth.InvalidClient("the client is waiting for approval")
	case !c.Active():
		return nil, nil, oauth.InvalidClient("the client is disabled")
	}
	if err := b.assertions.Verify(a, c.Keys(), now); err != nil {
		return nil, nil, assertionError(err)
	}
	return c, a, nil
}

const twoMethods = "more than one client authentication method"

// basicClientID returns the client_id of Authorization headers that are
// exactly one header of Basic credentials (RFC 7617) holding a client_id
// and an empty secret, both form-encoded before base64 as RFC 6749 §2.3.1
// says. golang.org/x/oauth2 and several .NET clients send that next to a
// client assertion, and HelseID (Duende IdentityServer) reads it as a
// client without a secret, authenticated by its assertion. Anything else,
// a secret above all, is not such a header.
func basicClientID(headers []string) (string, bool) {
	if len(headers) != 1 {
		return "", false
	}
	scheme, credentials, ok := strings.Cut(headers[0], " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(credentials)
	if err != nil {
		return "", false
	}
	user, secret, ok := strings.Cut(string(raw), ":")
	if !ok || secret != "" {
		return "", false
	}
	id, err := url.QueryUnescape(user)
	if err != nil || id == "" {
		return "", false
	}
	return id, true
}

func assertionError(err error) error {
	var ce *clientauth.Error
	switch {
	case errors.Is(err, clientauth.ErrBothDetails):
		return oauth.InvalidRequest("client_assertion must not carry both assertion_details and authorization_details")
	case errors.As(err, &ce):
		return oauth.InvalidClient(ce.Reason)
	}
	return err
}
