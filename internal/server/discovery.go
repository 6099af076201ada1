package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/login"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/token"
)

// Paths relative to the issuer (HelseID profile §1.2).
const (
	PathDiscovery     = "/.well-known/openid-configuration"
	PathOAuthMetadata = "/.well-known/oauth-authorization-server"
	PathJWKS          = "/.well-known/openid-configuration/jwks"
	PathExpiredJWKS   = "/connect/expiredjwks"
)

// metadata is the discovery document. It advertises only what this build
// enforces, with HelseID's field names, and is built from the settings the
// endpoints enforce, never written by hand; fields for login, PAR,
// userinfo and end-session appear with those endpoints.
type metadata struct {
	Issuer                   string   `json:"issuer"`
	JWKSURI                  string   `json:"jwks_uri"`
	TokenEndpoint            string   `json:"token_endpoint"`
	GrantTypes               []string `json:"grant_types_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	ScopesSupported          []string `json:"scopes_supported"`
	ClaimsSupported          []string `json:"claims_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthAlgs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	DPoPAlgs                 []string `json:"dpop_signing_alg_values_supported"`
	ExpiredJWKSURI           string   `json:"expired_jwks_uri"`

	// OpenID Connect: userinfo, ID tokens, logout.
	UserinfoEndpoint   string   `json:"userinfo_endpoint"`
	EndSessionEndpoint string   `json:"end_session_endpoint,omitempty"`
	IDTokenAlgs        []string `json:"id_token_signing_alg_values_supported"`

	// The front channel (RFC 9126, RFC 9207, RFC 7636, RFC 9101).
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	PAREndpoint           string   `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePAR            bool     `json:"require_pushed_authorization_requests"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	ResponseModes         []string `json:"response_modes_supported"`
	IssParameter          bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameter      bool     `json:"request_parameter_supported"`
	RequestObjectAlgs     []string `json:"request_object_signing_alg_values_supported"`
	PromptValues          []string `json:"prompt_values_supported"`
	AvailableIdPs         []string `json:"available_idps"`

	// Introspection (RFC 7662) and revocation (RFC 7009), with the
	// authentication they take (RFC 8414 §2).
	IntrospectionEndpoint            string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthAlgs    []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthAlgs       []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
}

// discovery builds the document from the same settings the endpoints
// enforce, so it cannot claim what they do not do.
func (s *Server) discovery(snap *registry.Snapshot) metadata {
	grants := s.token.GrantTypes()
	sort.Strings(grants)
	m := metadata{
		Issuer:                   s.issuer,
		JWKSURI:                  s.issuer + PathJWKS,
		TokenEndpoint:            s.token.URL(),
		GrantTypes:               grants,
		ResponseTypes:            []string{"code"},
		SubjectTypes:             []string{"public"},
		TokenEndpointAuthMethods: []string{oauth.AuthMethodPrivateKeyJWT},
		TokenEndpointAuthAlgs:    jws.AlgorithmNames(s.assertions.Algorithms),
		DPoPAlgs:                 jws.AlgorithmNames(proofAlgorithms(s.proofs.Algorithms)),
		ExpiredJWKSURI:           s.issuer + PathExpiredJWKS,
		ClaimsSupported: []string{
			helseid.ClaimClientAMR, helseid.ClaimClientAMRHelseID, helseid.ClaimClientName,
			helseid.ClaimClientTenancy, helseid.ClaimOrgNrParent, helseid.ClaimOrgNrChild,
			helseid.ClaimOrgNrSupplier, helseid.ClaimSFMJournalID, helseid.ClaimOriginalClientID,
		},
		IntrospectionEndpoint:            s.introspect.URL(),
		IntrospectionEndpointAuthMethods: []string{oauth.AuthMethodPrivateKeyJWT},
		IntrospectionEndpointAuthAlgs:    jws.AlgorithmNames(s.assertions.Algorithms),
		RevocationEndpoint:               s.revoke.URL(),
		RevocationEndpointAuthMethods:    []string{oauth.AuthMethodPrivateKeyJWT},
		RevocationEndpointAuthAlgs:       jws.AlgorithmNames(s.assertions.Algorithms),

		AuthorizationEndpoint: s.authorize.AuthorizationURL(),
		// HelseID: PAR is required per client (require_par), not for
		// every client.
		RequirePAR:           false,
		CodeChallengeMethods: []string{"S256"},
		ResponseModes:        []string{"query"},
		IssParameter:         true,
		RequestParameter:     true,
		RequestObjectAlgs:    s.authorize.RequestObjectAlgorithms(),
		PromptValues:         []string{"none", "login"},
		AvailableIdPs:        []string{},
	}
	m.UserinfoEndpoint = s.userinfo.URL()
	m.EndSessionEndpoint = s.endSessionURL
	m.IDTokenAlgs = jws.AlgorithmNames(s.keys.IDTokenAlgorithms())
	if s.authorize.PAR() {
		m.PAREndpoint = s.authorize.PARURL()
	}
	// Only the providers a person can log in at here: a TestIDP in a
	// production configuration, or a provider of a type this build does
	// not log in with, is never offered, so it is not listed.
	for _, p := range snap.IdentityProviders() {
		if login.Offers(p, s.cfg.Test()) {
			m.AvailableIdPs = append(m.AvailableIdPs, p.Name)
		}
	}
	// authorization_code only when a client can get a code: one that may
	// log people in, and a provider to log in at.
	if !canLogIn(snap, len(m.AvailableIdPs) > 0) {
		m.GrantTypes = slices.DeleteFunc(m.GrantTypes, func(g string) bool { return g == oauth.GrantTypeAuthorizationCode })
	}
	// The person's scopes and claims only where a login can grant them.
	if slices.Contains(m.GrantTypes, oauth.GrantTypeAuthorizationCode) {
		m.ScopesSupported = append(m.ScopesSupported, token.IdentityScopes...)
		m.ClaimsSupported = append(m.ClaimsSupported, personClaims...)
	}
	for _, api := range snap.APIs() {
		m.ScopesSupported = append(m.ScopesSupported, api.Scopes...)
	}
	sort.Strings(m.ScopesSupported)
	m.ScopesSupported = slices.Compact(m.ScopesSupported)
	if m.ScopesSupported == nil {
		m.ScopesSupported = []string{}
	}
	return m
}

// personClaims are the claims about a person that ID tokens, access
// tokens and userinfo carry (internal/identity, userinfo).
var personClaims = []string{
	"sub", "auth_time", "idp", "amr", "sid", "name", "given_name", "middle_name", "family_name",
	helseid.ClaimPID, helseid.ClaimPIDPseudonym, helseid.ClaimSecurityLevel, helseid.ClaimAssuranceLevel,
	helseid.ClaimNetwork, helseid.ClaimHPRNumber, "helseid://claims/hpr/hpr_details",
}

func canLogIn(snap *registry.Snapshot, idp bool) bool {
	if !idp {
		return false
	}
	return snap.LoginClients() > 0
}

func proofAlgorithms(algs []jose.SignatureAlgorithm) []jose.SignatureAlgorithm {
	if algs == nil {
		return jws.Algorithms
	}
	return algs
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	writePublicJSON(w, s.discovery(s.registry.Current()))
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	writePublicJSON(w, s.keys.JWKS())
}

func (s *Server) serveExpiredJWKS(w http.ResponseWriter, r *http.Request) {
	writePublicJSON(w, s.keys.ExpiredJWKS())
}

// writePublicJSON answers with a document that clients may cache for a
// while: new signing keys are published a day before they sign.
func writePublicJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		oauth.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
