package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// TestExchange is SFM's case end to end with the client library: an EPJ
// gets a token for SFM, and SFM's own client exchanges it for a
// Reseptformidleren token bound to SFM's DPoP key.
func TestExchange(t *testing.T) {
	e := startE2E(t)
	epj := e.client(t, "sfm-client", nil)
	subject, err := epj.Token(t.Context(), client.TokenRequest{SFMJournalID: "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"})
	if err != nil {
		t.Fatal(err)
	}
	sfm := e.client(t, "sfm-actor", func(c *client.Config) { c.GenerateDPoPKey = true })
	got, err := sfm.Exchange(t.Context(), client.ExchangeRequest{SubjectToken: subject.AccessToken, Scopes: []string{servertest.RFScope}})
	if err != nil {
		t.Fatal(err)
	}
	if got.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" || got.TokenType != "DPoP" || got.Expiry.IsZero() {
		t.Errorf("response %+v", got)
	}
	c := e.accessClaims(t, sfm, got.AccessToken)
	act, _ := c["act"].(map[string]any)
	cnf, _ := c["cnf"].(map[string]any)
	switch {
	case c["aud"] != servertest.RFAudience, c["client_id"] != "sfm-actor":
		t.Errorf("aud %v, client_id %v", c["aud"], c["client_id"])
	case c["helseid://claims/client/original_client_id"] != "sfm-client", act["client_id"] != "sfm-actor":
		t.Errorf("original_client_id %v, act %v", c["helseid://claims/client/original_client_id"], act)
	case c["e-helse:sfm.api/client/claims/sfm-id"] != servertest.SFMID, c["nhn:sfm:journal-id"] != "a99abfb4-2bea-4e0a-bb03-38e37febbd2c":
		t.Errorf("SFM claims did not cross: %v", c)
	case cnf["jkt"] != sfm.DPoPThumbprint():
		t.Errorf("cnf %v, want the exchanging client's key", cnf)
	}
}

func TestExchangeErrors(t *testing.T) {
	e := startE2E(t)
	epj := e.client(t, "sfm-client", nil)
	subject, err := epj.Token(t.Context(), client.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		clientID string
		req      client.ExchangeRequest
		wantCode string // OAuth error code; empty for a local error
		wantErr  string // substring of the error
	}{
		{"actor the subject client does not allow", "sfm-other-actor", client.ExchangeRequest{SubjectToken: subject.AccessToken, Scopes: []string{servertest.RFScope}}, "invalid_request", "not permitted"},
		{"not the owner of the subject's API", "chain-actor", client.ExchangeRequest{SubjectToken: subject.AccessToken, Scopes: []string{servertest.RFScope}}, "invalid_request", "no audience matching configuration owner"},
		{"no subject token", "sfm-actor", client.ExchangeRequest{Scopes: []string{servertest.RFScope}}, "", "the subject token is empty"},
		{"subject token with its scheme", "sfm-actor", client.ExchangeRequest{SubjectToken: "DPoP " + subject.AccessToken}, "", "pass the token without its scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client(t, tt.clientID, nil).Exchange(t.Context(), tt.req)
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
}
