package oauth

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an OAuth error response. Code and Description are sent to the
// client; the wrapped cause is for logs only and is never serialised, so
// internal details cannot leak into error_description.
type Error struct {
	Code        string
	Description string
	// Status is the HTTP status. Zero means the default for Code.
	Status int
	// DPoPNonce, when set, is sent in the DPoP-Nonce response header
	// (RFC 9449 §8): with use_dpop_nonce, and whenever the server wants the
	// client to switch to a fresh nonce.
	DPoPNonce string
	// RetryAfter, when positive, is sent as Retry-After in seconds: with a
	// 429 or 503 it says when to come back.
	RetryAfter int

	cause error
}

// New returns an error with the given code and description.
func New(code, description string) *Error {
	return &Error{Code: code, Description: description}
}

// Newf is New with a formatted description.
func Newf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Constructors for the common codes. Each returns a fresh value, so there are
// no shared sentinels that a caller could mutate.

func InvalidRequest(description string) *Error { return New(CodeInvalidRequest, description) }
func InvalidClient(description string) *Error  { return New(CodeInvalidClient, description) }
func InvalidGrant(description string) *Error   { return New(CodeInvalidGrant, description) }
func InvalidScope(description string) *Error   { return New(CodeInvalidScope, description) }
func InvalidTarget(description string) *Error  { return New(CodeInvalidTarget, description) }
func InvalidDPoPProof(description string) *Error {
	return New(CodeInvalidDPoPProof, description)
}
func UnauthorizedClient(description string) *Error {
	return New(CodeUnauthorizedClient, description)
}
func UnsupportedGrantType(description string) *Error {
	return New(CodeUnsupportedGrantType, description)
}

// UseDPoPNonce asks the client to retry with the given server nonce
// (RFC 9449 §8).
func UseDPoPNonce(nonce string) *Error {
	return &Error{Code: CodeUseDPoPNonce, Description: "Authorization server requires nonce in DPoP proof", DPoPNonce: nonce}
}

// Wrap records the cause for the logs and returns e.
func (e *Error) Wrap(cause error) *Error {
	e.cause = cause
	return e
}

// WithStatus overrides the HTTP status and returns e.
func (e *Error) WithStatus(status int) *Error {
	e.Status = status
	return e
}

func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.cause }

// HTTPStatus is the status the error is sent with: 401 for invalid_client
// (RFC 6749 §5.2 allows 400 or 401; HelseID and IdentityServer answer 401),
// 500 for server_error, 503 for temporarily_unavailable, 400 otherwise.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case CodeInvalidClient, CodeInvalidToken:
		return http.StatusUnauthorized
	case CodeInsufficientScope:
		return http.StatusForbidden
	case CodeServerError:
		return http.StatusInternalServerError
	case CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
