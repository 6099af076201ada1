// Package client gets access tokens from HelseID, or from Tillit, as a
// HelseID client does: it authenticates with a private_key_jwt client
// assertion, binds tokens to a key with DPoP and handles the use_dpop_nonce
// round trip that HelseID asks for on the first token request.
//
// A Client is made once per client configuration and shared; it is safe for
// concurrent use. It reads the issuer's discovery document once a day and
// remembers the last DPoP nonce the token endpoint gave, so that most
// requests need one round trip:
//
//	key, err := keyfile.ReadFile("client.jwk")
//	...
//	c, err := client.New(client.Config{
//		Issuer:   "https://helseid-sts.test.nhn.no",
//		ClientID: "8cd7c619-92db-4d55-89e2-383b75efc758",
//		Key:      key,
//	})
//	...
//	org, err := helseid.NewMultiTenantOrganization("994598759", "")
//	...
//	tok, err := c.Token(ctx, client.TokenRequest{
//		Scopes:           []string{"nhn:deft/api"},
//		AssertionDetails: []helseid.Detail{org},
//	})
//	var oerr *client.Error
//	if errors.As(err, &oerr) && oerr.Code == "invalid_scope" {
//		...
//	}
//
// Only the client_credentials grant exists so far. The package imports no
// Tillit server code: it is meant to be used by other modules.
package client
