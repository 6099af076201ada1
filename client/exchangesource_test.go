package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/resource"
)

// countExchanges counts the token exchanges in log that the STS answered
// with status (0: any).
func countExchanges(log []exchange, status int) int {
	n := 0
	for _, x := range log {
		if x.Path == "/connect/token" && x.Form.Get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange" && (status == 0 || x.Status == status) {
			n++
		}
	}
	return n
}

// TestE2EExchangeTokenSource is SFM's case with a cache: SFM makes an
// exchange token source for every request it serves and calls
// Reseptformidleren through Transport. One subject token costs one
// exchange however many calls it brings, another subject token its own;
// the exchanged token is renewed at the margin, and once the subject token
// has expired the refusal comes back and is not cached.
func TestE2EExchangeTokenSource(t *testing.T) {
	e := startE2E(t)
	ctx := t.Context()
	epj := e.client(t, "sfm-client", nil)
	sub1, err := epj.Token(ctx, client.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sub2, err := epj.Token(ctx, client.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sfm := e.client(t, "sfm-actor", nil)

	v, err := resource.New(resource.Config{Issuer: e.srv.URL, Audience: servertest.RFAudience, Scopes: []string{servertest.RFScope},
		Now: e.srv.Clock.Now, Nonces: resource.NewNonces()})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"client_id": c.ClientID, "original_client_id": c.OriginalClientID})
	})))
	defer api.Close()
	e.rec.take()

	call := func(subject string) error {
		ts, err := sfm.ExchangeTokenSource(client.ExchangeRequest{SubjectToken: subject, Scopes: []string{servertest.RFScope}})
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: &client.Transport{Source: ts}}).Get(api.URL + "/whoami")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := client.ResponseError(resp); err != nil {
			return err
		}
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		if out["client_id"] != "sfm-actor" || out["original_client_id"] != "sfm-client" {
			return errors.New("the API saw " + out["client_id"] + " for " + out["original_client_id"])
		}
		return nil
	}

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subject := sub1.AccessToken
			if i%2 == 1 {
				subject = sub2.AccessToken
			}
			if err := call(subject); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := countExchanges(e.rec.take(), http.StatusOK); got != 2 {
		t.Fatalf("%d exchanges for %d calls with two subject tokens, want 2", got, 2*n)
	}

	ts, err := sfm.ExchangeTokenSource(client.ExchangeRequest{SubjectToken: sub1.AccessToken, Scopes: []string{servertest.RFScope}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Clock.Advance(time.Duration(first.ExpiresIn)*time.Second - 30*time.Second) // the default ExpiryMargin
	renewed, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || countExchanges(e.rec.take(), http.StatusOK) != 1 {
		t.Fatal("the exchanged token was not renewed at the margin")
	}
	if err := call(sub1.AccessToken); err != nil {
		t.Fatalf("with the renewed token: %v", err)
	}

	e.srv.Clock.Advance(time.Minute) // the subject token has expired
	e.rec.take()
	for range 2 {
		_, err := ts.Token(ctx)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != 400 {
			t.Fatalf("after the subject token expired: %v", err)
		}
	}
	if got := countExchanges(e.rec.take(), 0); got < 2 {
		t.Fatalf("%d exchanges for two calls after a refusal, want one each: refusals are not cached", got)
	}
	if _, err := sfm.ExchangeTokenSource(client.ExchangeRequest{SubjectToken: "DPoP " + sub1.AccessToken}); err == nil {
		t.Fatal("a subject token with its scheme was taken")
	}
}
