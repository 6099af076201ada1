package token

import (
	"errors"
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
	switch {
	case (req.Basic || secret) && hasAssertion:
		// RFC 6749 §2.3: one authentication method per request.
		return nil, nil, oauth.InvalidRequest("more than one client authentication method")
	case req.Basic || secret:
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
	if req.ClientID != "" && req.ClientID != a.ClientID {
		return nil, nil, oauth.InvalidClient("client_id does not match the client_assertion")
	}
	c, ok := snap.Client(a.ClientID)
	switch {
	case !ok:
		return nil, nil, oauth.InvalidClient("unknown client")
	case c.Err != nil:
		return nil, nil, oauth.InvalidClient("the client's registration cannot be used").Wrap(c.Err)
	case c.Status == store.StatusPending:
		return nil, nil, oauth.InvalidClient("the client is waiting for approval")
	case !c.Active():
		return nil, nil, oauth.InvalidClient("the client is disabled")
	}
	if err := b.assertions.Verify(a, c.Keys, now); err != nil {
		return nil, nil, assertionError(err)
	}
	return c, a, nil
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
