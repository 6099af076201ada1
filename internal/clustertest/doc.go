// Package clustertest proves, with real `tillit serve` processes, real
// HTTP and a real store, what an operator relies on when running several
// instances: that instances on one PostgreSQL database behave as one token
// service (replay state, DPoP nonces, signing keys and registry changes
// shared), and that an instance killed under load loses no audit record of
// a token a client received.
//
// The package has tests only. Its TestMain builds the tillit binary once
// (with the race detector when the tests run with it) and starts
// PostgreSQL through internal/pgtest, which fails rather than skips when
// PostgreSQL is missing.
package clustertest
