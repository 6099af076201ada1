//go:build race

package clustertest

// raceEnabled builds the servers with the race detector too: the build
// then reuses the test's own compiled packages, and a data race in a
// server fails the test.
const raceEnabled = true
