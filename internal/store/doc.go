// Package store defines the one persistence interface of the token service,
// its records and its sentinel errors. Backends live in the sqlite and
// postgres subpackages and all pass the conformance suite in storetest.
//
// The store never returns protocol errors: callers map ErrNotFound, ErrReplay
// and friends to OAuth codes.
package store
