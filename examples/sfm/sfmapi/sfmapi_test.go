package sfmapi

// The whole path with real servers: the real STS (internal/servertest), an
// EPJ calling this API through the client library's Transport, this API
// exchanging the EPJ's token with SFM's own client, and a downstream
// Reseptformidleren on the resource package (examples/epj's test runs the
// real one, examples/reseptformidleren/rfapi). Only the clock is fake,
// shared by all.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/resource"
)

// downstream is a Reseptformidleren that answers what its token says about
// the callers.
func downstream(t *testing.T, sts *servertest.Server) *httptest.Server {
	v, err := resource.New(resource.Config{Issuer: sts.URL, Audience: servertest.RFAudience, Scopes: []string{servertest.RFScope}, Now: sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		var actors []string
		for _, a := range c.Chain() {
			actors = append(actors, a.ClientID)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"client_id": c.ClientID, "original_client_id": c.OriginalClientID,
			"sfm_id": c.APIClaims["e-helse:sfm.api/client/claims/sfm-id"], "actors": actors,
		})
	})))
	t.Cleanup(srv.Close)
	return srv
}

// trace notes the path of every request it passes on.
type trace struct {
	mu    sync.Mutex
	paths []string
}

func (tr *trace) RoundTrip(req *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.paths = append(tr.paths, req.URL.Path)
	tr.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestEndToEnd(t *testing.T) {
	sts := servertest.Start(t, servertest.Options{})
	rf := downstream(t, sts)
	sfmTrace := &trace{}
	sfmClient, err := client.New(client.Config{
		Issuer: sts.URL, ClientID: "sfm-actor", Key: sts.Key(t, "sfm-actor"), GenerateDPoPKey: true,
		Now: sts.Clock.Now, HTTPClient: &http.Client{Transport: sfmTrace},
	})
	if err != nil {
		t.Fatal(err)
	}
	handler, _, err := NewAPI(sts.URL, "", sfmClient, rf.URL, sfmTrace, sts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(handler)
	defer api.Close()

	// The EPJ calls SFM as it would call HelseID-protected SFM.
	epjSource := func(clientID string) *client.TokenSource {
		t.Helper()
		epj, err := client.New(client.Config{Issuer: sts.URL, ClientID: clientID, Key: sts.Key(t, clientID), Now: sts.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := epj.TokenSource(client.TokenRequest{Scopes: []string{scope}})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	call := func(ts *client.TokenSource) (int, answer) {
		t.Helper()
		resp, err := (&http.Client{Transport: &client.Transport{Source: ts}}).Get(api.URL + "/prescriptions")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a
	}

	epj := epjSource("sfm-client")
	status, a := call(epj)
	if status != http.StatusOK {
		t.Fatalf("status %d: %+v", status, a)
	}
	if a.SFMSaw.ClientID != "sfm-client" || a.SFMSaw.SFMID != servertest.SFMID || a.SFMSaw.Organization.Parent != servertest.Customer {
		t.Errorf("SFM saw %+v", a.SFMSaw)
	}
	var rfSaw struct {
		ClientID         string   `json:"client_id"`
		OriginalClientID string   `json:"original_client_id"`
		SFMID            string   `json:"sfm_id"`
		Actors           []string `json:"actors"`
	}
	if err := json.Unmarshal(a.ReseptformidlerenSaw, &rfSaw); err != nil {
		t.Fatal(err)
	}
	if rfSaw.ClientID != "sfm-actor" || rfSaw.OriginalClientID != "sfm-client" || rfSaw.SFMID != servertest.SFMID ||
		len(rfSaw.Actors) != 1 || rfSaw.Actors[0] != "sfm-actor" {
		t.Errorf("Reseptformidleren saw %+v", rfSaw)
	}
	// SFM's side: discovery, the exchange at the STS with its nonce round
	// trip on the first request, then Reseptformidleren.
	if got := strings.Join(sfmTrace.paths, " "); got != "/.well-known/openid-configuration /connect/token /connect/token /whoami" {
		t.Errorf("SFM's requests: %s", got)
	}
	sfmTrace.paths = nil
	if status, _ := call(epj); status != http.StatusOK {
		t.Fatalf("second call: status %d", status)
	}
	if got := strings.Join(sfmTrace.paths, " "); got != "/whoami" {
		t.Errorf("SFM's requests on a call with the same token: %s (want the exchanged token from the cache)", got)
	}
	sfmTrace.paths = nil
	if status, _ := call(epjSource("sfm-client")); status != http.StatusOK {
		t.Fatalf("third call: status %d", status)
	}
	if got := strings.Join(sfmTrace.paths, " "); got != "/connect/token /whoami" {
		t.Errorf("SFM's requests on a call with another token: %s (want one exchange, no nonce round trip)", got)
	}
}

// TestExchangeRefused runs SFM with a client that owns the SFM API but that
// the EPJ's client does not allow to exchange its tokens: the STS says "not
// permitted", and SFM answers 403 without calling downstream.
func TestExchangeRefused(t *testing.T) {
	sts := servertest.Start(t, servertest.Options{})
	rf := downstream(t, sts)
	other, err := client.New(client.Config{Issuer: sts.URL, ClientID: "sfm-other-actor", Key: sts.Key(t, "sfm-other-actor"), Now: sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rfTrace := &trace{}
	handler, _, err := NewAPI(sts.URL, "", other, rf.URL, rfTrace, sts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(handler)
	defer api.Close()
	epj, err := client.New(client.Config{Issuer: sts.URL, ClientID: "sfm-client", Key: sts.Key(t, "sfm-client"), Now: sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := epj.TokenSource(client.TokenRequest{Scopes: []string{scope}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &client.Transport{Source: ts}}).Get(api.URL + "/prescriptions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusForbidden || body["error"] != "token exchange refused: not permitted" {
		t.Fatalf("status %d %v", resp.StatusCode, body)
	}
	if len(rfTrace.paths) != 0 {
		t.Errorf("Reseptformidleren was called: %v", rfTrace.paths)
	}
}
