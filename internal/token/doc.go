// Package token is the token endpoint (POST /connect/token). Every request
// runs one fixed pipeline (pipeline.go): bounded body, method and content
// type, one parse of the form, private_key_jwt, DPoP, then the grant named by
// grant_type fills in the token, and the pipeline spends the single-use
// values, signs and answers. A grant lives in a file of its own:
// client_credentials, token exchange (exchange.go) and refresh_token
// (refresh.go). The package also holds the endpoints that share its client
// authentication and token checks: introspection (RFC 7662) and revocation
// (RFC 7009).
package token
