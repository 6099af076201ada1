// Package clientauth verifies private_key_jwt client assertions (RFC 7523
// §2.2 and §3, OIDC Core §9) the way HelseID accepts them (docs/design.md,
// "Client assertions"). It does not record the jti: the
// caller spends it atomically with the DPoP proof jti once every check of
// the request has passed.
package clientauth
