// Package stalltest proves that a database that stops answering does not
// hold the clients of the token service: with a real PostgreSQL server
// stopped by SIGSTOP, or a SQLite file whose write lock another process
// holds, every request to the token, introspection and revocation
// endpoints is answered within the configured request timeout with 503
// temporarily_unavailable, and the service recovers by itself once the
// database answers again.
//
// The package has tests only. Its TestMain stops the PostgreSQL servers it
// starts through internal/pgtest, which fails rather than skips when
// PostgreSQL is missing.
package stalltest
