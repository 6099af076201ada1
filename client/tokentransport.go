package client

import (
	"errors"
	"net/http"
)

// TokenTransport is an http.RoundTripper that calls an API with one token
// the caller already holds, such as the answer of Exchange or Refresh: it
// adds the token and a new DPoP proof for Client's key to every request,
// and does an API's use_dpop_nonce round trip, exactly as Transport does
// for the tokens of a TokenSource. It never gets a new token: when Token
// expires, requests fail at the API, and the caller exchanges or refreshes
// again. For exchanged tokens, Transport with an ExchangeTokenSource does
// that itself.
type TokenTransport struct {
	// Client is the client the token was issued to: its DPoP key signs the
	// proofs, and it keeps the APIs' nonces. Required.
	Client *Client
	// Token is sent with every request. Required.
	Token *TokenResponse
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *TokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Client == nil || t.Token == nil || t.Token.AccessToken == "" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("client: TokenTransport needs a Client and a Token")
	}
	return t.Client.send(req, t.Token, t.Base)
}
