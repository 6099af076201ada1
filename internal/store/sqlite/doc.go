// Package sqlite is the embedded store.Store backend: one SQLite file in WAL
// mode, through the pure-Go modernc.org/sqlite driver (no cgo).
//
// SQLite has a single writer, so every write of a Store goes through one
// connection owned by one goroutine. That goroutine commits the writes that
// queue up while it is busy in one transaction (group commit), each write in
// its own savepoint, so that many concurrent ConsumeJTIs calls share one
// fsync. Reads use a small pool of read-only connections and never wait for
// the writer. Several processes may open the same file (tillit serve and a
// tillit CLI command); SQLite's file locks and a busy timeout serialise their
// writers.
package sqlite
