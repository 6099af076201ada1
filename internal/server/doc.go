// Package server wires the token service together: it opens the store,
// applies the configured registry, loads the keys, mounts the endpoints on
// one http.ServeMux with the common middleware, runs the background jobs
// (key rotation, registry reload, replay clean-up) and shuts down gracefully.
package server
