// Package postgres is the store.Store backend for several instances: one
// PostgreSQL database shared by every instance, through pgx v5 and its
// connection pool.
//
// Every method is one statement or one pipelined batch, so that nearly every call
// cost one round trip to the server; see docs/performance.md. Concurrency
// between instances is decided by the database: a unique index with
// INSERT ... ON CONFLICT for single-use values and keys, a per-family
// advisory lock for refresh tokens, and a row bumped in the same
// transaction for the registry version. Nothing is cached in memory, so an
// instance may start, stop or crash at any time without others noticing.
package postgres
