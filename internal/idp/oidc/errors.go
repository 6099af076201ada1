package oidc

import (
	"errors"
	"fmt"
)

// Errors of the callback. The login page shows a generic message; these
// say what went wrong in the log.
var (
	ErrState      = errors.New("oidc: state unknown, expired or already used")
	ErrIssuer     = errors.New("oidc: issuer does not match the provider")
	ErrCode       = errors.New("oidc: callback has no code")
	ErrSignature  = errors.New("oidc: id_token signature invalid")
	ErrAlgorithm  = errors.New("oidc: id_token algorithm not allowed")
	ErrUnknownKey = errors.New("oidc: id_token signed with a key the provider does not publish")
	ErrAudience   = errors.New("oidc: id_token audience does not contain our client id")
	ErrAZP        = errors.New("oidc: id_token azp is not our client id")
	ErrNonce      = errors.New("oidc: id_token nonce does not match")
	ErrExpired    = errors.New("oidc: id_token expired")
	ErrIssuedAt   = errors.New("oidc: id_token issued in the future or without iat")
	ErrACR        = errors.New("oidc: id_token acr is lower than asked or unknown")
	ErrPID        = errors.New("oidc: id_token has no valid pid")
	ErrMalformed  = errors.New("oidc: malformed id_token")
)

// ProviderError is an error the provider answered with, at the callback
// (RFC 6749 §4.1.2.1) or at its token endpoint (§5.2).
type ProviderError struct {
	// Endpoint is "par", "authorization" or "token".
	Endpoint    string
	Code        string
	Description string
}

func (e *ProviderError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("oidc: provider's %s endpoint answered %s", e.Endpoint, e.Code)
	}
	return fmt.Sprintf("oidc: provider's %s endpoint answered %s: %s", e.Endpoint, e.Code, e.Description)
}

// Canceled reports whether the person declined or canceled the login at the
// provider, rather than something having failed.
func (e *ProviderError) Canceled() bool { return e.Code == "access_denied" }
