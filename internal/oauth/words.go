package oauth

// Grant types (RFC 6749 §4, RFC 8693 §2.1).
const (
	GrantTypeClientCredentials = "client_credentials"
	GrantTypeAuthorizationCode = "authorization_code"
	GrantTypeRefreshToken      = "refresh_token"
	GrantTypeTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// ClientAssertionTypeJWTBearer is the only client_assertion_type the service
// accepts (RFC 7523 §2.2).
const ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AuthMethodPrivateKeyJWT is the only token endpoint authentication method
// (OIDC Core §9). HelseID refuses client secrets and mTLS.
const AuthMethodPrivateKeyJWT = "private_key_jwt"

// Token types in token responses (RFC 6750, RFC 9449 §5) and RFC 8693 token
// type identifiers.
const (
	TokenTypeBearer      = "Bearer"
	TokenTypeDPoP        = "DPoP"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// Error codes (RFC 6749 §5.2, RFC 8707 §2, RFC 9449 §5 and §12.2, RFC 6750 §3.1).
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidClient          = "invalid_client"
	CodeInvalidGrant           = "invalid_grant"
	CodeUnauthorizedClient     = "unauthorized_client"
	CodeUnsupportedGrantType   = "unsupported_grant_type"
	CodeInvalidScope           = "invalid_scope"
	CodeInvalidTarget          = "invalid_target"
	CodeInvalidDPoPProof       = "invalid_dpop_proof"
	CodeUseDPoPNonce           = "use_dpop_nonce"
	CodeServerError            = "server_error"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
	CodeInvalidToken           = "invalid_token"
	CodeInsufficientScope      = "insufficient_scope"
	// CodeUnsupportedTokenType answers a revocation of a token type the
	// server cannot revoke (RFC 7009 §2.2.1).
	CodeUnsupportedTokenType = "unsupported_token_type"
)
