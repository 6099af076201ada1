// Package registry applies the declared registry (records of every
// store.Kind) to the store, and keeps the immutable in-memory view of it
// that the token endpoint reads on every request.
//
// The store is the source of truth (docs/design.md, where the
// registry lives): Sync writes the configuration file's objects into it at
// start, and a Watcher polls the store so that changes made by another
// process, such as the CLI, reach a running server within a bounded time.
package registry
