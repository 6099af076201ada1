// Package token is the token endpoint (POST /connect/token) and the two
// endpoints that share its client authentication and token checks:
// introspection (RFC 7662) and revocation (RFC 7009).
//
// Every token request runs one fixed pipeline (pipeline.go), a file per
// step:
//
//	limits.go          0. rate limits, per source address and per client
//	request.go         1–3. method, content type, bounded body, one parse of the form
//	authenticate.go    4. private_key_jwt client authentication
//	proof.go           5. the DPoP proof
//	grant.go           6–7. the grant named by grant_type fills in the token:
//	                   clientcredentials.go, exchange.go, refresh.go, with
//	                   scope.go (which API, which scopes), orgs.go
//	                   (organisations) and claims.go (what a token says)
//	sign.go            8. the token signed
//	decision.go        8. the decision committed: the single-use values
//	                   (replay.go) and refresh token spent, with the audit
//	                   record, durable before the answer
//	refuse.go          a refusal, recorded, rendered and logged
//
// What the three endpoints share (configuration and its defaults, client
// authentication, rate limits, replay keys, refusals, audit records) is in
// shared.go and the step files above; introspect.go and revoke.go hold only
// their own endpoints, and access.go the check of an access token this
// service issued.
package token
