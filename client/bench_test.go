package client_test

// go test ./client -run '^$' -bench . -count 5

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/keyfile"
)

// cachedSource returns a TokenSource that already holds a token from the
// real STS.
func cachedSource(b *testing.B, dpopKey *jose.JSONWebKey) *client.TokenSource {
	b.Helper()
	srv := servertest.Start(b, servertest.Options{})
	c, err := client.New(client.Config{Issuer: srv.URL, ClientID: "deft-client", Key: srv.Key(b, "deft-client"),
		DPoPKey: dpopKey, Now: srv.Clock.Now, Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		b.Fatal(err)
	}
	ts, err := c.TokenSource(client.TokenRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ts.Token(context.Background()); err != nil {
		b.Fatal(err)
	}
	return ts
}

// BenchmarkTokenSourceCached is what every API call pays for its token
// once the first is fetched.
func BenchmarkTokenSourceCached(b *testing.B) {
	ts := cachedSource(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTransport is the client's side of one API call with a cached
// token: a new ES256 proof, the headers, and a round trip to a local server
// that answers at once (no validation there).
func BenchmarkTransport(b *testing.B) {
	dk, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		b.Fatal(err)
	}
	ts := cachedSource(b, dk)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer api.Close()
	hc := &http.Client{Transport: &client.Transport{Source: ts}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := hc.Get(api.URL + "/whoami")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
