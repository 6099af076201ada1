package client

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
)

const grantTypeRefreshToken = "refresh_token"

// RefreshRequest uses a refresh token (RFC 6749 §6, profile §4.4): after
// one user login, one access token per API (profile §4.5), and a new
// organisation when the user switches.
type RefreshRequest struct {
	// RefreshToken is the newest refresh token of the login.
	RefreshToken string
	// Scopes narrows the login's scopes; none means all of them. Unlike
	// TokenRequest, the Client's default Scopes are not used: the login
	// decided what the refresh token may get.
	Scopes []string
	// Resource is the API the access token is for (RFC 8707). A login with
	// scopes for several APIs must name one per refresh.
	Resource string
	// Organization, when set, switches the organisation the user acts for;
	// otherwise the login's stays. The Client's default Organization is not
	// used, for the same reason as Scopes.
	Organization Organization
	// AssertionDetails are further entries for the client assertion's
	// assertion_details (an SFM journal id, Tillitsrammeverk).
	AssertionDetails []helseid.Detail
	// Bearer leaves the DPoP proof out, for a refresh token that was issued
	// without DPoP. A DPoP-bound refresh token needs a proof with the key it
	// is bound to: use the same Client (or the same DPoPKey) as the login.
	Bearer bool
}

// Refresh gets an access token with a refresh token. The answer carries
// the next refresh token (RefreshToken, living RefreshTokenExpiresIn
// seconds): keep it and forget the one sent, which is now spent. The STS
// rotates refresh tokens and takes a spent one coming back for theft: it
// ends the whole login. For the same reason, do not refresh with one
// refresh token from two goroutines at once; only one of them can win.
//
// Errors from the token endpoint are *Error; invalid_grant means the login
// is over (expired, revoked, reused) and the user must log in again.
func (c *Client) Refresh(ctx context.Context, r RefreshRequest) (*TokenResponse, error) {
	if r.RefreshToken == "" {
		return nil, errors.New("client: refresh: the refresh token is empty")
	}
	if strings.ContainsAny(r.RefreshToken, " \t\r\n") {
		return nil, errors.New("client: refresh: the refresh token has white space")
	}
	form := url.Values{
		"grant_type":    {grantTypeRefreshToken},
		"refresh_token": {r.RefreshToken},
	}
	// The Client's defaults are not used: the login decided what its
	// refresh token may get.
	details, err := c.render(form, grant{
		scopes:   r.Scopes,
		resource: r.Resource,
		org:      r.Organization,
		details:  r.AssertionDetails,
	})
	if err != nil {
		return nil, err
	}
	return c.token(ctx, form, details, r.Bearer)
}
