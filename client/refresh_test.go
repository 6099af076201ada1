package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/token"
)

// login is what the refresh tokens of these tests were granted: a user
// login with scopes of two APIs.
var login = token.RefreshGrant{
	Scopes:   []string{"openid", "offline_access", "nhn:deft/api", "test:bearer/read"},
	Identity: token.Identity{Subject: "tzto6gPhyTQw2bR/Wl0kgF/mTH+jdQoUBvaYSObfmlQ=", SecurityLevel: "4"},
}

// TestRefresh follows profile §4.5 with the client library: one login, one
// token per API, the newest refresh token kept each time.
func TestRefresh(t *testing.T) {
	e := startE2E(t)
	c := e.client(t, "refresh-client", func(c *client.Config) { c.GenerateDPoPKey = true })
	rt := e.srv.RefreshToken(t, "refresh-client", c.DPoPThumbprint(), login)
	first := rt
	for _, api := range []string{"nhn:deft", "test:bearer"} {
		got, err := c.Refresh(t.Context(), client.RefreshRequest{RefreshToken: rt, Resource: api})
		if err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		if got.RefreshToken == "" || got.RefreshToken == rt || got.RefreshTokenExpiresIn != 7200 || got.TokenType != "DPoP" {
			t.Fatalf("%s: response %+v", api, got)
		}
		rt = got.RefreshToken
		claims := e.accessClaims(t, c, got.AccessToken)
		if claims["aud"] != api || claims["sub"] != login.Identity.Subject {
			t.Errorf("%s: claims %v", api, claims)
		}
	}
	// Narrowed to one scope.
	got, err := c.Refresh(t.Context(), client.RefreshRequest{RefreshToken: rt, Scopes: []string{"nhn:deft/api"}})
	if err != nil || got.Scope != "nhn:deft/api" {
		t.Fatalf("narrowed: %+v, %v", got, err)
	}
	// The spent first token coming back ends the login.
	_, err = c.Refresh(t.Context(), client.RefreshRequest{RefreshToken: first, Resource: "nhn:deft"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "invalid_grant" {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := c.Refresh(t.Context(), client.RefreshRequest{RefreshToken: got.RefreshToken, Resource: "nhn:deft"}); !errors.As(err, &ce) || ce.Code != "invalid_grant" {
		t.Fatalf("the newest token after the reuse: %v", err)
	}
}

func TestRefreshErrors(t *testing.T) {
	e := startE2E(t)
	bound := e.client(t, "refresh-client", func(c *client.Config) { c.GenerateDPoPKey = true })
	other := e.client(t, "refresh-client", func(c *client.Config) { c.GenerateDPoPKey = true })
	multi := e.client(t, "multi-client", func(c *client.Config) { c.Tenancy = client.MultiTenant })
	rt := e.srv.RefreshToken(t, "refresh-client", bound.DPoPThumbprint(), login)
	multiLogin := login
	multiLogin.OrgNrParent = servertest.Tenant
	multiRT := e.srv.RefreshToken(t, "multi-client", multi.DPoPThumbprint(), multiLogin)
	tests := []struct {
		name     string
		c        *client.Client
		req      client.RefreshRequest
		wantCode string // OAuth error code; empty for a local error
		wantErr  string
	}{
		{"another DPoP key", other, client.RefreshRequest{RefreshToken: rt, Resource: "nhn:deft"}, "invalid_grant", "not made with the key the refresh_token is bound to"},
		{"no DPoP proof", bound, client.RefreshRequest{RefreshToken: rt, Resource: "nhn:deft", Bearer: true}, "invalid_grant", "bound to a DPoP key"},
		{"no API named for a login with two", bound, client.RefreshRequest{RefreshToken: rt}, "invalid_target", "several APIs"},
		{"switch to an organisation without a delegation", multi, client.RefreshRequest{RefreshToken: multiRT, Resource: "nhn:deft", Organization: client.Organization{Parent: servertest.Customer}}, "invalid_request", "has not delegated"},
		{"malformed organisation number", multi, client.RefreshRequest{RefreshToken: multiRT, Organization: client.Organization{Parent: "12345"}}, "", "not a valid organisation number"},
		{"no refresh token", bound, client.RefreshRequest{Resource: "nhn:deft"}, "", "the refresh token is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Refresh(t.Context(), tt.req)
			var ce *client.Error
			switch {
			case err == nil:
				t.Fatal("no error")
			case tt.wantCode != "" && (!errors.As(err, &ce) || ce.Code != tt.wantCode):
				t.Fatalf("error %v, want code %s", err, tt.wantCode)
			case tt.wantCode == "" && errors.As(err, &ce):
				t.Fatalf("error %v went to the server", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
	// The refusals spent nothing: the login goes on, and switches to an
	// organisation that delegated.
	if _, err := bound.Refresh(t.Context(), client.RefreshRequest{RefreshToken: rt, Resource: "nhn:deft"}); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
	got, err := multi.Refresh(t.Context(), client.RefreshRequest{RefreshToken: multiRT, Resource: "test:bearer", Organization: client.Organization{Parent: servertest.TenantAll}})
	if err != nil {
		t.Fatalf("switch: %v", err)
	}
	if c := e.accessClaims(t, multi, got.AccessToken); c["helseid://claims/client/claims/orgnr_parent"] != servertest.TenantAll {
		t.Errorf("orgnr_parent %v", c["helseid://claims/client/claims/orgnr_parent"])
	}
}
