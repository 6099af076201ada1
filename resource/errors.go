package resource

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tillit-sts/tillit/dpop"
)

// Kinds of failure. Every error Validate returns is an *Error that matches
// (errors.Is) exactly one of these, or dpop.ErrInvalidProof or
// dpop.ErrUseNonce for a proof that fails its own checks.
var (
	// ErrNoToken: the request has no credentials of the route's scheme.
	ErrNoToken = errors.New("resource: no access token")
	// ErrInvalidRequest: the credentials are malformed, e.g. two
	// Authorization headers (RFC 6750 §3.1).
	ErrInvalidRequest = errors.New("resource: invalid request")
	// ErrInvalidToken: the access token is not valid here.
	ErrInvalidToken = errors.New("resource: invalid access token")
	// ErrReplay: the DPoP proof's jti was seen before.
	ErrReplay = errors.New("resource: DPoP proof replayed")
	// ErrInsufficientScope: the token lacks a scope the route requires.
	ErrInsufficientScope = errors.New("resource: insufficient scope")
	// ErrKeysUnavailable: the issuer's signing keys could not be fetched,
	// so the token could be neither accepted nor refused.
	ErrKeysUnavailable = errors.New("resource: the issuer's signing keys are unavailable")
	// ErrReplayUnavailable: the replay cache could not record the proof
	// (it is full, or a shared cache cannot be reached). The request is
	// refused: accepting a proof that is not recorded would let it be
	// replayed.
	ErrReplayUnavailable = errors.New("resource: replay cache cannot record the proof")
	// ErrReplayCacheFull is what MemoryReplayCache returns when full, rather
	// than forget an unexpired jti. It matches ErrReplayUnavailable.
	ErrReplayCacheFull = fmt.Errorf("resource: replay cache is full: %w", ErrReplayUnavailable)
)

// OAuth error codes at APIs (RFC 6750 §3.1, RFC 9449 §7.1 and §9).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
	CodeInvalidDPoPProof  = "invalid_dpop_proof"
	CodeUseDPoPNonce      = "use_dpop_nonce"
	// CodeTemporarilyUnavailable answers failures on the API's side (no
	// keys, a full replay cache), where a new token would not help.
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// errorTable maps each kind to its HTTP status and error code: the one
// place where Go errors become protocol answers.
var errorTable = []struct {
	kind   error
	status int
	code   string
}{
	{ErrNoToken, http.StatusUnauthorized, ""}, // RFC 6750 §3.1: no code without credentials
	{ErrInvalidRequest, http.StatusBadRequest, CodeInvalidRequest},
	{ErrInvalidToken, http.StatusUnauthorized, CodeInvalidToken},
	{dpop.ErrInvalidProof, http.StatusUnauthorized, CodeInvalidDPoPProof},
	{ErrReplay, http.StatusUnauthorized, CodeInvalidDPoPProof},
	{dpop.ErrUseNonce, http.StatusUnauthorized, CodeUseDPoPNonce},
	{ErrInsufficientScope, http.StatusForbidden, CodeInsufficientScope},
	{ErrKeysUnavailable, http.StatusServiceUnavailable, CodeTemporarilyUnavailable},
	{ErrReplayUnavailable, http.StatusServiceUnavailable, CodeTemporarilyUnavailable},
}

// Error is a refused request: what the middleware answers, and why.
type Error struct {
	// Status is the HTTP status: 401, 400, 403 or 503.
	Status int
	// Code is the OAuth error code; empty when the request carried no
	// credentials.
	Code string
	// Description is the error_description: written for the caller, it
	// never quotes the token or proof and never holds internal text.
	Description string

	kind  error
	cause error
	scope string // the scopes required, for insufficient_scope
}

func (e *Error) Error() string {
	s := "resource: " + e.Description
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Is matches the kind of failure.
func (e *Error) Is(target error) bool { return target == e.kind }

// Unwrap returns the underlying cause, such as a network error.
func (e *Error) Unwrap() error { return e.cause }

// fail builds the *Error for a failure of kind.
func fail(kind error, description string, cause error) *Error {
	e := &Error{Description: description, kind: kind, cause: cause, Status: http.StatusInternalServerError}
	for _, row := range errorTable {
		if row.kind == kind {
			e.Status, e.Code = row.status, row.code
			break
		}
	}
	return e
}

// proofError turns an error of the dpop package into an *Error, keeping its
// reason, which the dpop package writes for clients.
func proofError(err error) *Error {
	var de *dpop.Error
	reason := "DPoP proof is invalid"
	if errors.As(err, &de) {
		reason = de.Reason
	}
	if errors.Is(err, dpop.ErrUseNonce) {
		return fail(dpop.ErrUseNonce, reason, nil)
	}
	return fail(dpop.ErrInvalidProof, reason, nil)
}
