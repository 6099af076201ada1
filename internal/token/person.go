package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// PersonStore reads the person register (the persons registry kind, which
// is not in the snapshot: a test population may be large).
type PersonStore interface {
	// Person returns the person with the pid, store.ErrNotFound when the
	// register does not know them.
	Person(ctx context.Context, pid string) (store.Person, error)
}

// idTokenPlan is the ID token a grant asks for; the pipeline signs it once
// the access token exists, for at_hash.
type idTokenPlan struct {
	Person    *identity.Claims
	Nonce     string
	SessionID string
}

// asksFor reports whether the scopes include any of want.
func asksFor(scopes []string, want ...string) bool {
	return slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(want, s) })
}

// completePerson is the person a login names, completed from the
// registers: the HPR number from the login (TestIDP may name one) or else
// from the active HPR entry of the pid, when a scope asks for it; the
// names the identity provider gave, when profile asks for them, or else
// from the person register, which the caller gives only in a test
// environment (a production login without names gets none). Only ID
// tokens and userinfo carry names, so a token without profile costs no
// store read.
func completePerson(ctx context.Context, snap *registry.Snapshot, persons PersonStore, l store.Login, scopes []string) (identity.Person, error) {
	level, err := strconv.Atoi(l.SecurityLevel)
	if err != nil {
		return identity.Person{}, fmt.Errorf("token: the login's security level %q: %w", l.SecurityLevel, identity.ErrInvalidPerson)
	}
	p := identity.Person{
		PID:           l.PID,
		SecurityLevel: level,
		AMR:           l.AMR,
		AuthTime:      l.AuthTime,
		IDP:           l.IdP,
	}
	if asksFor(scopes, helseid.ScopeHPRNumber, helseid.ScopeHPRLegacy) {
		p.HPRNumber = l.HPRNumber
		if p.HPRNumber == "" {
			if h, ok := snap.HealthPersonnelByPID(l.PID); ok {
				p.HPRNumber = h.Number
			}
		}
	}
	if asksFor(scopes, helseid.ScopeOpenID) && asksFor(scopes, helseid.ScopeProfile) {
		p.Names = identity.Names(l.Names)
		if l.Names == (store.Names{}) && persons != nil {
			names, err := registerNames(ctx, persons, l.PID)
			if err != nil {
				return identity.Person{}, err
			}
			p.Names = names
		}
	}
	return p, nil
}

// registerNames are the names the person register has for pid; none when
// it does not know them.
func registerNames(ctx context.Context, persons PersonStore, pid string) (identity.Names, error) {
	r, err := persons.Person(ctx, pid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return identity.Names{}, nil
	case err != nil:
		return identity.Names{}, fmt.Errorf("token: person register: %w", err)
	}
	return identity.Names{Given: r.GivenName, Middle: r.MiddleName, Family: r.FamilyName}, nil
}

// personClaims are the person's claims for target by the scopes.
func personClaims(p identity.Person, scopes []string, target identity.Target, key []byte) (*identity.Claims, error) {
	c, err := identity.ClaimsFor(p, scopes, target, key)
	if err != nil {
		// A login that cannot be put in a token is the server's fault,
		// not the client's: a bare server_error, with the cause logged.
		return nil, fmt.Errorf("token: person claims: %w", err)
	}
	return c, nil
}

// accessIdentity is what an access token says about the person.
func accessIdentity(c *identity.Claims) Identity {
	return Identity{
		Subject:        c.Subject,
		AuthTime:       c.AuthTime,
		IDP:            c.IDP,
		AMR:            c.AMR,
		SID:            c.SID,
		PID:            c.PID,
		PIDPseudonym:   c.PIDPseudonym,
		SecurityLevel:  c.SecurityLevel,
		AssuranceLevel: c.AssuranceLevel,
		Network:        c.Network,
		HPRNumber:      c.HPRNumber,
	}
}
