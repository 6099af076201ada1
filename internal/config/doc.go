// Package config reads the one YAML configuration file of the token service
// (server settings and the declared registry) into a Config, fills in
// defaults, takes secrets from TILLIT_* environment variables, and reports
// every problem at once with the file and line it is on.
//
// docs/configuration.md describes every key; the example there is also
// testdata/example.yaml and is loaded by the tests.
package config
