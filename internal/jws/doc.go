// Package jws parses and verifies compact JWS (RFC 7515 §7.1) on the hot
// paths: DPoP proofs, client assertions and access tokens, every one of
// which the token service or an API checks on every request.
//
// It does one narrow thing: split the three parts, decode them strictly,
// read the header into a typed struct, refuse any alg outside the caller's
// allow-list and any critical extension, and verify the signature with the
// standard library's crypto/ecdsa and crypto/rsa. go-jose does the same and
// much more (JWE, JSON serialisation, x5c chains), and that generality cost
// 20–30 µs of a 150 µs ES256 request in profiles of both hot paths
// (docs/performance.md). Everything else JOSE in Tillit (signing, JWK sets)
// stays with go-jose, and the differential fuzz tests here check that this
// package never accepts what go-jose refuses.
//
// It also owns the key policy every part of Tillit applies to a key that is
// registered or presented (proof keys, client keys, key files): which
// algorithms, which key types and sizes (CheckKey), and the RFC 7638
// thumbprint that names a key.
package jws
