// Package keys owns the service's own keys: the signing keys of access
// tokens and of ID tokens, one rotating chain per algorithm in use, with
// the JWKS documents that publish them, the DPoP nonce keys, the keys
// Tillit authenticates with at upstream identity providers
// (private_key_jwt), and the key-encryption key that seals every private
// part at rest. It is the only package that builds token signers.
package keys
