package helseid

// Scopes that ask for claims about the logged-in person (profile §5.6).
const (
	ScopeOpenID         = "openid"
	ScopeProfile        = "profile"
	ScopeOfflineAccess  = "offline_access"
	ScopeIdentityAll    = "helseid://scopes/identity/all"
	ScopePID            = "helseid://scopes/identity/pid"
	ScopePIDPseudonym   = "helseid://scopes/identity/pid_pseudonym"
	ScopeSecurityLevel  = "helseid://scopes/identity/security_level"
	ScopeAssuranceLevel = "helseid://scopes/identity/assurance_level"
	ScopeNetwork        = "helseid://scopes/identity/network"
	ScopeHPRNumber      = "helseid://scopes/hpr/hpr_number"
	// ScopeHPRLegacy is the old name of ScopeHPRNumber, still accepted.
	ScopeHPRLegacy = "helseid://scopes/hpr"
)

// Values of helseid://claims/identity/network: the network the person
// logged in from. Tillit has one farm, reached from the internet.
const (
	NetworkInternet  = "internett"
	NetworkHealthNet = "helsenett"
)

// Values of helseid://claims/identity/assurance_level (eIDAS) for the
// Norwegian security levels 2, 3 and 4.
const (
	AssuranceLow         = "low"
	AssuranceSubstantial = "substantial"
	AssuranceHigh        = "high"
)

// AssuranceLevel maps a Norwegian security level ("2", "3", "4") to its
// eIDAS assurance level; ok is false for any other value.
func AssuranceLevel(securityLevel string) (level string, ok bool) {
	switch securityLevel {
	case "2":
		return AssuranceLow, true
	case "3":
		return AssuranceSubstantial, true
	case "4":
		return AssuranceHigh, true
	}
	return "", false
}
