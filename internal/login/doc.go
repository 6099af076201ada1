// Package login holds the browser side of user login, one folder per piece:
// page renders the server-side pages (choosing an identity provider, the
// TestIDP form, logout confirmation, errors) with their security headers,
// csrf protects their forms, and testidp is the test identity provider.
// The protocol endpoints that send the browser here live in
// internal/authorize.
package login
