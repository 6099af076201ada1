package helseid

// Claim names in HelseID access tokens (profile §5.3). The namespace spelling
// matters: client_tenancy lives under helseid://claims/client/, not under
// .../client/claims/.
const (
	ClaimClientAMR        = "client_amr"
	ClaimClientAMRHelseID = "helseid://claims/client/amr"
	ClaimClientName       = "helseid://claims/client/client_name"
	ClaimClientTenancy    = "helseid://claims/client/client_tenancy"
	ClaimOrgNrParent      = "helseid://claims/client/claims/orgnr_parent"
	ClaimOrgNrChild       = "helseid://claims/client/claims/orgnr_child"
	ClaimOrgNrSupplier    = "helseid://claims/client/claims/orgnr_supplier"
	ClaimOriginalClientID = "helseid://claims/client/original_client_id"
	ClaimSFMJournalID     = "nhn:sfm:journal-id"
	ClaimPID              = "helseid://claims/identity/pid"
	ClaimPIDPseudonym     = "helseid://claims/identity/pid_pseudonym"
	ClaimSecurityLevel    = "helseid://claims/identity/security_level"
	ClaimAssuranceLevel   = "helseid://claims/identity/assurance_level"
	ClaimNetwork          = "helseid://claims/identity/network"
	ClaimHPRNumber        = "helseid://claims/hpr/hpr_number"
)

// Values of client_amr and helseid://claims/client/amr.
const (
	ClientAMRPrivateKeyJWT = "private_key_jwt"
	// HelseID writes "rsa_private_key" for RSA client keys; Tillit writes
	// "ec_private_key" for EC keys (HelseID's value for them is not public).
	ClientAMRRSAKey = "rsa_private_key"
	ClientAMRECKey  = "ec_private_key"
)

// Tenancy values of helseid://claims/client/client_tenancy.
const (
	TenancySingle = "single-tenant"
	TenancyMulti  = "multi-tenant"
)

// APIClientClaim builds API-specific client claim names:
// "<audience>/client/claims/<name>", e.g. "e-helse:sfm.api/client/claims/sfm-id".
func APIClientClaim(audience, name string) string {
	return audience + "/client/claims/" + name
}

// Optional client claims an API can ask for by these short names.
const (
	WantOrgNrSupplier = "orgnr_supplier"
	WantSFMJournalID  = "nhn:sfm:journal-id"
)
