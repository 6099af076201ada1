package server

import (
	"context"
	"fmt"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/login"
	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/token"
)

// loginSeam is the authorization endpoint's Login: the caller's, or the
// login pages, which are built after the endpoint they complete logins
// through.
func (s *Server) loginSeam(l authorize.Login) authorize.Login {
	if l != nil {
		return l
	}
	return authorize.LoginFunc(func(w http.ResponseWriter, r *http.Request, req *authorize.Request) {
		s.login.Start(w, r, req)
	})
}

func errorPage(l authorize.Login) func(http.ResponseWriter, *http.Request, int, string, string) {
	if l != nil {
		return nil
	}
	return login.ErrorPage
}

// newLogin builds the login pages: the identity provider choice, the
// TestIDP (test environments only), sessions and end-session. Their
// secret is a service secret in the store, shared by every instance.
func (s *Server) newLogin(ctx context.Context, decisions authorize.Decisions) error {
	secret, err := s.keys.Secret(ctx, store.PurposeLogin)
	if err != nil {
		return err
	}
	// Tillit's own private_key_jwt keys at upstream providers are made on
	// the first start that needs one, so that the operator can register
	// the public key (`tillit idp jwks`) before anyone logs in.
	for _, p := range s.registry.Current().IdentityProviders() {
		if p.OIDC != nil && p.OIDC.ClientAuth() == store.UpstreamAuthPrivateKeyJWT {
			if err := s.keys.EnsureUpstreamKey(ctx, p.Name, jose.SignatureAlgorithm(p.OIDC.Algorithm)); err != nil {
				return err
			}
		}
	}
	pseudonym := s.keys.PseudonymKey()
	var attempts *ratelimit.Limiter
	if n := s.cfg.RateLimit.LoginPerMinute; n > 0 {
		attempts = ratelimit.New(float64(n)/60, n, s.cfg.RateLimit.MaxAddresses)
	}
	s.login, err = login.New(login.Config{
		Issuer:     s.issuer,
		Authorize:  s.authorize,
		Registry:   s.registry.Current,
		Store:      s.store,
		Secret:     secret,
		Test:       s.cfg.Test(),
		Subject:    func(pid string) (string, error) { return identity.Pseudonym(pseudonym, pid) },
		PublicKeys: s.keys.JWKS,
		Attempts:   attempts,
		Refusals:   s.refusals,
		Decisions:  decisions,
		Instance:   s.cfg.Instance,
		// The store keeps upstream logins' state, so any instance can
		// take the provider's callback.
		UpstreamStates: s.store,
		UpstreamKey:    s.keys.UpstreamKey,
		Now:            s.now,
		Log:            s.log,
	})
	if err != nil {
		return fmt.Errorf("server: login pages: %w", err)
	}
	s.endSessionURL = s.login.EndSessionURL()
	return nil
}

// personRegister is the person register the token endpoint and userinfo
// fall back to for the names of a login whose identity provider gave
// none: only in a test environment, where the register is the test
// population. In production a login without names gets none.
func (s *Server) personRegister() token.PersonStore {
	if !s.cfg.Test() {
		return nil
	}
	return persons{s.store}
}

// nameSealer seals the names identity providers give into access tokens
// for userinfo, with a service secret every instance shares.
func (s *Server) nameSealer(ctx context.Context) (*token.NameSealer, error) {
	secret, err := s.keys.Secret(ctx, store.PurposeNames)
	if err != nil {
		return nil, err
	}
	return token.NewNameSealer(secret)
}
