// Package page renders the login pages: choosing an identity provider, the
// TestIDP form, logout confirmation and errors. Pages are server-rendered
// HTML that works without JavaScript, in Norwegian bokmål (the default) or
// English, and are sent with strict security headers. Forms carry a CSRF
// token from package csrf; the handlers that receive them check it.
package page
