package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrIssuerUnreachable is matched (errors.Is) by the errors of requests
// that did not reach the issuer or that it failed to answer: no connection,
// a timeout, or HTTP 5xx from its discovery document or token endpoint.
// Such a request may succeed when tried again later. A refusal, an OAuth
// error answer of HTTP 4xx, does not match it: asking again will not help.
var ErrIssuerUnreachable = errors.New("client: the issuer could not be reached")

// Error is an error answer from the token endpoint (RFC 6749 §5.2). Get it
// with errors.As. HelseID puts its HID-10xx codes at the start of
// Description, e.g. "HID-1002: ...". An Error of HTTP 5xx is a failure of
// the issuer rather than a refusal, and matches ErrIssuerUnreachable.
type Error struct {
	// Code is the OAuth error code, e.g. "invalid_client" or
	// "use_dpop_nonce". It is empty when the body was not an OAuth error
	// (a proxy's HTML page, say); StatusCode then tells what happened.
	Code        string
	Description string
	// StatusCode is the HTTP status; 0 for an error answer at a login's
	// redirect URI (PendingLogin.Exchange).
	StatusCode int
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("client: token endpoint answered HTTP %d without an OAuth error", e.StatusCode)
	}
	if e.StatusCode == 0 {
		// An error answer of a login, brought back by the browser.
		s := "client: login: the issuer answered " + printable(e.Code)
		if e.Description != "" {
			s += ": " + printable(e.Description)
		}
		return s
	}
	s := fmt.Sprintf("client: token endpoint answered HTTP %d: %s", e.StatusCode, printable(e.Code))
	if e.Description != "" {
		s += ": " + printable(e.Description)
	}
	return s
}

// Is makes an answer of HTTP 5xx match ErrIssuerUnreachable.
func (e *Error) Is(target error) bool {
	return target == ErrIssuerUnreachable && e.StatusCode >= 500
}

// unreachable wraps err, the failure of a request to the issuer, so that it
// matches ErrIssuerUnreachable, unless the caller's context ended it.
func unreachable(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("client: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrIssuerUnreachable, what, err)
}

// printable drops control characters from server text before it goes into
// an error message that may be printed to a terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// errorBody is an OAuth error response body.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// newError reads an error response. A body that is not an OAuth error keeps
// only the status: its text is not the server's answer to the client.
func newError(status int, body []byte) *Error {
	var b errorBody
	if err := json.Unmarshal(body, &b); err != nil || b.Error == "" {
		return &Error{StatusCode: status}
	}
	return &Error{Code: b.Error, Description: b.Description, StatusCode: status}
}

// HIDCode returns the HelseID code that starts Description, such as
// "HID-1002" for a child organisation not on the client's list (profile
// §6.3), or "" if there is none. Programs can act on it without parsing
// the text that follows.
func (e *Error) HIDCode() string {
	d := e.Description
	if len(d) < len("HID-0000") || !strings.HasPrefix(d, "HID-") {
		return ""
	}
	n := len("HID-")
	for n < len(d) && d[n] >= '0' && d[n] <= '9' {
		n++
	}
	if n == len("HID-") {
		return ""
	}
	return d[:n]
}
