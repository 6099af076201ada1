// Package postgres is the store.Store backend for several instances: one
// PostgreSQL database shared by every instance, through pgx v5 and its
// connection pool.
//
// Every method is one statement or one pipelined batch, so that nearly every call
// cost one round trip to the server; see docs/performance.md. Concurrency
// between instances is decided by the database: a unique index with
// INSERT ... ON CONFLICT for single-use values and keys, a per-family
// advisory lock for refresh tokens, a row bumped in the same transaction
// for the registry version, and a conditional update of each audit chain's
// head. The one thing kept in memory is the head of each audit chain a
// Store appends to, which every append checks against the database: an
// instance may start, stop or crash at any time without others noticing.
package postgres
