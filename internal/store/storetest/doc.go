// Package storetest is the conformance suite that every store.Store backend
// must pass: call Run from a short test in the backend's package.
//
// The suite pins down what the interface comments leave to the backend:
//
//   - Times come back in UTC with microsecond precision (the finest that
//     PostgreSQL's timestamptz keeps); the suite compares them after
//     truncating the input to microseconds.
//   - Lists are ordered by key in byte order, as Go compares strings
//     (PostgreSQL needs COLLATE "C" for that).
//   - A nil and an empty slice or map are the same value: a backend may
//     return either.
//   - UpdatedAt strictly increases with every update, even when the clock
//     does not move between two writes.
//   - A method called with a canceled context returns an error that wraps
//     context.Canceled promptly and writes nothing.
package storetest
