// Package dpop creates and verifies DPoP proofs (RFC 9449) as HelseID uses
// them, and issues and checks stateless server nonces. The client library
// builds proofs with Signer; the token service and the API-side middleware
// check them with Verifier and keep the replay state themselves.
package dpop
