// Package login is the browser side of user login: it takes over a
// validated authorization request (authorize.Login), lets the person
// choose an identity provider, hands them to it (the TestIDP in test
// environments), keeps their session, and ends it at end-session
// (/connect/endsession). One folder per piece below it: page renders the
// server-side pages with their security headers, csrf protects their
// forms, and testidp is the test identity provider. The protocol
// endpoints that send the browser here live in internal/authorize.
package login
