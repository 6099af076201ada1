package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
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
// endpoints enforce, never written by hand; fields for login, PAR and
// userinfo appear with those endpoints.
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
		ResponseTypes:            []string{}, // no authorization endpoint yet
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
