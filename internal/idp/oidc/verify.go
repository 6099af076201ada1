package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
)

// Levels maps the acr values Tillit knows to Norwegian security levels:
// ID-porten's and HelseID's names for the same two levels, and HelseID's
// security_level digits.
var Levels = map[string]int{
	"idporten-loa-high":        4,
	"Level4":                   4,
	"High":                     4,
	"idporten-loa-substantial": 3,
	"Level3":                   3,
	"Substantial":              3,
	// HelseID: its security_level claim gives the level as a digit (the
	// ID token of a HelseID-shaped provider, Tillit among them, has no
	// acr); acr_claim names that claim.
	"4": 4,
	"3": 3,
}

// verify validates the ID token from the token endpoint (OpenID Connect
// Core §3.1.3.7) and maps it to a person.
func (p *Provider) verify(ctx context.Context, raw, nonce string) (*identity.Person, error) {
	tok, err := jose.ParseSigned(raw, Algorithms)
	if err != nil {
		if _, err2 := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512, jose.RS384, jose.RS512, jose.PS384, jose.PS512, jose.ES512, jose.EdDSA}); err2 == nil {
			return nil, ErrAlgorithm
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(tok.Signatures) != 1 {
		return nil, ErrMalformed
	}
	h := tok.Signatures[0].Protected
	// The key comes from the provider's jwks_uri by kid, never from a URL
	// or key the header carries.
	key, err := p.key(ctx, h.KeyID, jose.SignatureAlgorithm(h.Algorithm))
	if err != nil {
		return nil, err
	}
	payload, err := tok.Verify(key)
	if err != nil {
		return nil, ErrSignature
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	s := p.cfg.Settings
	if str(c, "iss") != s.Issuer {
		return nil, ErrIssuer
	}
	aud := strs(c, "aud")
	if !slices.Contains(aud, s.ClientID) {
		return nil, ErrAudience
	}
	// Core §3.1.3.7 (4, 5): with several audiences, azp must be us.
	if azp := str(c, "azp"); azp != "" && azp != s.ClientID || len(aud) > 1 && azp == "" {
		return nil, ErrAZP
	}
	if got := str(c, "nonce"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, ErrNonce
	}
	now := p.cfg.Now()
	exp, ok := num(c, "exp")
	if !ok || !now.Before(time.Unix(exp, 0).Add(leeway)) {
		return nil, ErrExpired
	}
	iat, ok := num(c, "iat")
	if !ok || time.Unix(iat, 0).After(now.Add(leeway)) {
		return nil, ErrIssuedAt
	}
	level, ok := Levels[str(c, s.ACRClaim)]
	if !ok || level < p.asked() {
		return nil, ErrACR
	}
	pid := str(c, s.PIDClaim)
	parsed, err := helseid.ParsePID(pid)
	if err != nil || parsed.Synthetic && !p.cfg.AllowSyntheticPID {
		return nil, ErrPID
	}
	person := &identity.Person{
		PID:           pid,
		SecurityLevel: level,
		AMR:           strs(c, s.AMRClaim),
		AuthTime:      now,
		IDP:           p.cfg.Name,
	}
	if at, ok := num(c, "auth_time"); ok {
		person.AuthTime = time.Unix(at, 0)
	}
	for _, n := range []struct {
		claim string
		to    *string
	}{{s.GivenNameClaim, &person.Names.Given}, {s.MiddleNameClaim, &person.Names.Middle}, {s.FamilyNameClaim, &person.Names.Family}, {s.NameClaim, &person.Names.Full}} {
		if n.claim != "" {
			*n.to = str(c, n.claim)
		}
	}
	return person, nil
}

// asked is the highest level among the acr_values asked for; 0 asks for
// none, and then any known level is accepted.
func (p *Provider) asked() int {
	m := 0
	for _, a := range p.cfg.Settings.ACRValues {
		m = max(m, Levels[a])
	}
	return m
}

func str(c map[string]json.RawMessage, name string) string {
	var s string
	if name == "" || json.Unmarshal(c[name], &s) != nil {
		return ""
	}
	return s
}

// strs reads a claim that is a string or an array of strings (aud, amr).
func strs(c map[string]json.RawMessage, name string) []string {
	if s := str(c, name); s != "" {
		return []string{s}
	}
	var l []string
	if json.Unmarshal(c[name], &l) != nil {
		return nil
	}
	return l
}

func num(c map[string]json.RawMessage, name string) (int64, bool) {
	var f float64
	if json.Unmarshal(c[name], &f) != nil || f <= 0 || f > 1<<40 {
		return 0, false
	}
	return int64(f), true
}
