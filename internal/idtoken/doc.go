// Package idtoken builds and signs OpenID Connect ID tokens (OIDC Core §2,
// §3.1.3.6) for HelseID logins: the person's claims from package identity
// plus iss, aud (the client alone), times, nonce, at_hash and sid.
package idtoken
