// Package pgtest starts a real, throwaway PostgreSQL server for tests and
// hands each test an empty schema of its own.
//
// A package whose tests need PostgreSQL calls Main from its TestMain and
// URL from its tests. The server is started, from PostgreSQL's own initdb
// and postgres binaries, in a temporary folder on a free loopback port the
// first time a test asks for a URL; Main stops it and removes the folder
// when the package's tests are done. Missing binaries are a test failure
// that says what to install, never a skip: the PostgreSQL backend must not
// pass CI by not being tested.
package pgtest
