package rfapi

// The path into this API with real servers: the real STS
// (internal/servertest), an EPJ's token for SFM exchanged with the client
// library as SFM's own client, and this API on httptest. Only the clock is
// fake, shared by STS and API.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
)

func TestExchangedToken(t *testing.T) {
	sts := servertest.Start(t, servertest.Options{})
	handler, _, err := NewAPI(sts.URL, "", sts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(handler)
	defer api.Close()
	newClient := func(id string) *client.Client {
		c, err := client.New(client.Config{Issuer: sts.URL, ClientID: id, Key: sts.Key(t, id), Now: sts.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const journal = "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"
	epj, sfm := newClient("sfm-client"), newClient("sfm-actor")
	subject, err := epj.Token(t.Context(), client.TokenRequest{SFMJournalID: journal})
	if err != nil {
		t.Fatal(err)
	}

	call := func(tok *client.TokenResponse, c *client.Client) (int, Seen) {
		t.Helper()
		resp, err := (&http.Client{Transport: &client.TokenTransport{Client: c, Token: tok}}).Get(api.URL + "/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s Seen
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, s
	}

	exchanged, err := sfm.Exchange(t.Context(), client.ExchangeRequest{SubjectToken: subject.AccessToken, Scopes: []string{scope}})
	if err != nil {
		t.Fatal(err)
	}
	status, seen := call(exchanged, sfm)
	want := Seen{
		ClientID: "sfm-actor", OriginalClientID: "sfm-client", ClientName: "SFM client",
		SFMID: servertest.SFMID, SFMJournalID: journal, Scopes: []string{scope},
	}
	switch {
	case status != http.StatusOK:
		t.Fatalf("status %d", status)
	case seen.ClientID != want.ClientID, seen.OriginalClientID != want.OriginalClientID, seen.ClientName != want.ClientName,
		seen.SFMID != want.SFMID, seen.SFMJournalID != want.SFMJournalID, !slices.Equal(seen.Scopes, want.Scopes):
		t.Errorf("saw %+v\nwant %+v", seen, want)
	case seen.Organization.Parent != servertest.Customer:
		t.Errorf("organisation %+v, want the EPJ's", seen.Organization)
	case len(seen.Actors) != 1 || seen.Actors[0].ClientID != "sfm-actor" || seen.Actors[0].Organization.Parent != servertest.SFMOrg:
		t.Errorf("actors %+v, want SFM's client acting for SFM", seen.Actors)
	}

	// The EPJ's own token is for SFM, not for this API.
	if status, _ := call(subject, epj); status != http.StatusUnauthorized {
		t.Errorf("the subject token itself: status %d, want 401", status)
	}
}
