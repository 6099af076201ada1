// Package authorize provides the front channel of a login: the pushed
// authorization request endpoint (RFC 9126) and the authorization endpoint
// (RFC 6749 §4.1, OpenID Connect Core §3.1.2), which validate a request,
// hand it to the login pages through the Login seam, and issue the code
// when the person has logged in.
package authorize
