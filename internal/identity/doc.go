// Package identity turns an authenticated person into the HelseID claims
// that access tokens, ID tokens and userinfo carry, by the scopes the client
// asked for, and derives the person's pseudonym (sub).
//
// It is pure: no store, no clock, no keys of its own. The caller supplies
// the pseudonym key, the names from the person register and the HPR number
// from the Health Personnel Register.
package identity
