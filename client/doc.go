// Package client gets access tokens from HelseID, or from Tillit, as a
// HelseID client does, and calls APIs with them: it authenticates with a
// private_key_jwt client assertion, binds tokens to a key with DPoP, handles
// the use_dpop_nonce round trips that HelseID and APIs ask for, caches tokens
// and signs a DPoP proof for every API call.
//
// A Client is made once per client configuration and shared; it is safe for
// concurrent use. It reads the issuer's discovery document once a day and
// remembers the DPoP nonces servers give, so that most requests need one
// round trip. For a machine client that calls one API, three values are
// all it takes:
//
//	key, err := keyfile.ReadFile("client.jwk") // a JWK with alg, or a PEM key
//	...
//	c, err := client.New(client.Config{
//		Issuer:   "https://helseid-sts.test.nhn.no",
//		ClientID: "8cd7c619-92db-4d55-89e2-383b75efc758",
//		Key:      key,
//		Scopes:   []string{"nhn:deft/api"},
//	})
//	...
//	ts, err := c.TokenSource(client.TokenRequest{})
//	...
//	api := &http.Client{Transport: &client.Transport{Source: ts}}
//	resp, err := api.Get("https://deft.test.nhn.no/whoami")
//
// TokenSource keeps a token per kind of request (scopes, resource,
// organisation) and renews it shortly before it expires, one request at a
// time however many goroutines ask. Transport adds "Authorization: DPoP" and
// a new proof to each request. Client.Token gets a token without the cache.
//
// The organisation a client acts for goes into the client assertion's
// assertion_details as NHN's libraries write it: Config.Tenancy says whether
// the client is single-tenant (it may name a child organisation) or
// multi-tenant (it must name the organisation, and may name its child), and
// Config.Organization or TokenRequest.Organization names them.
//
// Besides client_credentials (Client.Token, and TokenSource on top of it),
// Client.Exchange swaps a token an API received for one to a downstream API
// (token exchange, RFC 8693), and ExchangeTokenSource caches its answer
// per subject token for Transport; Client.Refresh gets a token with a
// refresh token after a user login. TokenTransport calls an API with one
// token from either. All of them send a new client assertion and DPoP
// proof per request and do the token endpoint's use_dpop_nonce round trip.
//
// A user login (the authorization code flow) starts with
// Client.PushAuthorization: a pushed authorization request with PKCE, state,
// nonce and a DPoP proof, so the code is bound to the Client's DPoP key.
// Send the browser to PendingLogin.AuthURL; when it comes back to the
// redirect URI, PendingLogin.Exchange checks state and iss (RFC 9207),
// redeems the code and verifies the ID token against the issuer's keys.
// Login.Token then gives a token per API from the refresh token, one
// refresh at a time, and Login.EndSessionURL logs the person out.
//
// Refusals by the token endpoint are *Error, with the OAuth error code,
// description and HTTP status. Errors that match ErrIssuerUnreachable
// (errors.Is) are failures to reach the issuer, which may pass: no
// connection, a timeout, HTTP 5xx. An API's refusal of a call comes back
// as its response, as http.Client does; ResponseError reads the 401 or 403
// and its WWW-Authenticate challenge into an *APIError. The package imports no Tillit server code and
// no database driver: it is meant to be used by other modules.
package client
