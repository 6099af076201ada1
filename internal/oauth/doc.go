// Package oauth holds the protocol vocabulary of the token service: OAuth 2.0
// error codes, grant and token type identifiers, and the one error type that
// handlers return and the one writer that renders it (RFC 6749 §5.2,
// RFC 9449 §7, RFC 8693 §2.2.2).
package oauth
