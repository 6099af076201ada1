// Package oidc logs people in at an upstream OpenID Connect provider such
// as ID-porten: it reads the provider's discovery document and keys,
// builds the authorization request (code flow with PKCE S256, state,
// nonce, acr_values), and on the callback spends the state, redeems the
// code with Tillit's client authentication, validates the ID token fully,
// and maps it to an identity.Person.
//
// Keys come only from the jwks_uri of the provider's discovery document,
// never from a URL a token names (jku, x5u). An unknown kid refetches the
// key set at most once per RefetchInterval, so a stream of forged kids
// cannot make Tillit hammer the provider.
package oidc
