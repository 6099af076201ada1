package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/helseid"
)

// AMRPassword is the amr value of a password login; TestIDP logins carry it,
// as HelseID's TestIDP does.
const AMRPassword = "pwd"

// Person is a person as an identity provider authenticated them, completed
// by the caller with what the registers know.
type Person struct {
	// PID is the national identity number (11 digits).
	PID string
	// SecurityLevel is the Norwegian security level of the login: 3 or 4
	// (2 from providers that offer it).
	SecurityLevel int
	// AMR lists the authentication methods (RFC 8176), such as ["pwd"].
	AMR []string
	// AuthTime is when the person authenticated.
	AuthTime time.Time
	// IDP is the name of the identity provider, such as "testidp-oidc".
	IDP string
	// Network is helseid.NetworkInternet or helseid.NetworkHealthNet;
	// empty means the internet.
	Network string
	// HPRNumber is the person's Health Personnel Register number, empty
	// when they are not health personnel.
	HPRNumber string
	// Names are the person's names, as the identity provider gave them
	// or (in test environments) from the person register; the zero value
	// means unknown, and then no name claims are issued.
	Names Names
}

// Names are a person's names. Full is the whole name when a provider
// gives it as one claim; without it, name is the parts joined.
type Names struct {
	Given, Middle, Family, Full string
}

func (n Names) known() bool { return n.Given != "" || n.Family != "" || n.Full != "" }

// Profile is the profile scope's claims for the names, nil when they are
// unknown.
func (n Names) Profile() *Profile {
	if !n.known() {
		return nil
	}
	return profile(n)
}

// Target is the kind of document the claims go into.
type Target int

const (
	// AccessToken carries the identity claims the scopes grant but not the
	// profile names: HelseID's access tokens for a login with the profile
	// scope carry no names, and an API that needs them asks userinfo.
	AccessToken Target = iota
	// IDToken carries every claim the scopes grant.
	IDToken
	// Userinfo carries every claim the scopes grant except the login's
	// protocol claims (auth_time, idp, amr), which describe a login
	// rather than the person.
	Userinfo
)

// Claims are what a token or userinfo says about the person (profile §5.2,
// §5.3). Field order is wire order; empty claims are left out, except that
// the name claims come together (middle_name may be "") whenever the names
// are known and the profile scope was granted, as HelseID's userinfo shows.
type Claims struct {
	Subject        string   `json:"sub"`
	AuthTime       int64    `json:"auth_time,omitempty"`
	IDP            string   `json:"idp,omitempty"`
	AMR            []string `json:"amr,omitempty"`
	SID            string   `json:"sid,omitempty"`
	PID            string   `json:"helseid://claims/identity/pid,omitempty"`
	PIDPseudonym   string   `json:"helseid://claims/identity/pid_pseudonym,omitempty"`
	SecurityLevel  string   `json:"helseid://claims/identity/security_level,omitempty"`
	AssuranceLevel string   `json:"helseid://claims/identity/assurance_level,omitempty"`
	Network        string   `json:"helseid://claims/identity/network,omitempty"`
	HPRNumber      string   `json:"helseid://claims/hpr/hpr_number,omitempty"`
	// Profile is nil unless the names go in; a nil embedded pointer adds
	// no members to the JSON.
	*Profile
}

// Profile holds the claims of the profile scope.
type Profile struct {
	Name       string `json:"name"`
	GivenName  string `json:"given_name"`
	MiddleName string `json:"middle_name"`
	FamilyName string `json:"family_name"`
}

// MinKeySize is the shortest pseudonym key accepted: the HMAC-SHA256 output
// size, so the key is no weaker than the pseudonym.
const MinKeySize = 32

// Pseudonym returns sub and pid_pseudonym for a pid:
// base64(HMAC-SHA256(key, pid)), 44 characters with padding. One key per
// deployment makes it the same for every client (public subject type), like
// HelseID's; rotating the key would change every person's sub.
func Pseudonym(key []byte, pid string) (string, error) {
	if len(key) < MinKeySize {
		return "", fmt.Errorf("identity: pseudonym key has %d bytes, want at least %d", len(key), MinKeySize)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(pid))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// ErrInvalidPerson is returned for a person whose pid or security level
// cannot be issued in a token.
var ErrInvalidPerson = errors.New("identity: invalid person")

// ClaimsFor maps a person and the granted scopes to the claims for target,
// as the profile's scope table says (profile §5.6):
//
//	openid                              sub
//	profile                             name, given_name, middle_name, family_name
//	helseid://scopes/identity/all       every helseid://claims/identity/ claim
//	helseid://scopes/identity/<claim>   helseid://claims/identity/<claim>
//	helseid://scopes/hpr/hpr_number     helseid://claims/hpr/hpr_number
//	                                    (also the legacy helseid://scopes/hpr)
//
// sub is in every target: a token about a person names them. Scopes that
// grant no person claims (API scopes, offline_access) are ignored. key is
// the pseudonym key (Pseudonym). The caller sets SID.
func ClaimsFor(p Person, scopes []string, target Target, key []byte) (*Claims, error) {
	if _, err := helseid.ParsePID(p.PID); err != nil {
		return nil, fmt.Errorf("%w: pid is not a valid identity number", ErrInvalidPerson)
	}
	level := strconv.Itoa(p.SecurityLevel)
	assurance, ok := helseid.AssuranceLevel(level)
	if !ok {
		return nil, fmt.Errorf("%w: security level %d", ErrInvalidPerson, p.SecurityLevel)
	}
	if p.HPRNumber != "" && !helseid.ValidHPRNumber(p.HPRNumber) {
		return nil, fmt.Errorf("%w: HPR number is not 1 to 9 digits", ErrInvalidPerson)
	}
	sub, err := Pseudonym(key, p.PID)
	if err != nil {
		return nil, err
	}
	c := &Claims{Subject: sub}
	if target != Userinfo {
		if !p.AuthTime.IsZero() {
			c.AuthTime = p.AuthTime.Unix()
		}
		c.IDP = p.IDP
		c.AMR = p.AMR
	}
	network := p.Network
	if network == "" {
		network = helseid.NetworkInternet
	}
	for _, s := range scopes {
		all := s == helseid.ScopeIdentityAll
		if all || s == helseid.ScopePID {
			c.PID = p.PID
		}
		if all || s == helseid.ScopePIDPseudonym {
			c.PIDPseudonym = sub
		}
		if all || s == helseid.ScopeSecurityLevel {
			c.SecurityLevel = level
		}
		if all || s == helseid.ScopeAssuranceLevel {
			c.AssuranceLevel = assurance
		}
		if all || s == helseid.ScopeNetwork {
			c.Network = network
		}
		if s == helseid.ScopeHPRNumber || s == helseid.ScopeHPRLegacy {
			c.HPRNumber = p.HPRNumber
		}
		if s == helseid.ScopeProfile && target != AccessToken && p.Names.known() {
			c.Profile = profile(p.Names)
		}
	}
	return c, nil
}

func profile(n Names) *Profile {
	var parts []string
	for _, s := range []string{n.Given, n.Middle, n.Family} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	name := n.Full
	if name == "" {
		name = strings.Join(parts, " ")
	}
	return &Profile{
		Name:       name,
		GivenName:  n.Given,
		MiddleName: n.Middle,
		FamilyName: n.Family,
	}
}
