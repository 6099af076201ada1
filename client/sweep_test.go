package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSourceSweep: the token cache drops entries that hold no valid token
// once it has grown past minSweep, and keeps those with a valid token or
// made too recently to have asked for one.
func TestSourceSweep(t *testing.T) {
	var mu sync.Mutex
	clock := testNow
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	c := newTestClient(t, Config{Now: now})

	source := func(scope string) *TokenSource {
		ts, err := c.TokenSource(TokenRequest{Scopes: []string{scope}})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	// One entry holds a token that is still valid, one a token that has
	// expired; the rest never got one.
	valid, expired := source("valid"), source("expired")
	valid.entry.cur.Store(&cachedToken{tok: &TokenResponse{Expiry: now().Add(time.Hour)}})
	expired.entry.cur.Store(&cachedToken{tok: &TokenResponse{Expiry: now().Add(time.Second)}})
	for i := range minSweep - 2 {
		source(fmt.Sprint("old-", i))
	}
	if got := c.sourceCount.Load(); got != minSweep {
		t.Fatalf("%d entries, want %d", got, minSweep)
	}

	advance(idleAfter + time.Second)
	fresh := source("fresh") // takes the cache past minSweep: a sweep
	if got := c.sourceCount.Load(); got != 2 {
		t.Errorf("%d entries after the sweep, want 2 (the valid token's and the fresh one)", got)
	}
	for _, tt := range []struct {
		scope string
		ts    *TokenSource
		kept  bool
	}{{"valid", valid, true}, {"fresh", fresh, true}, {"expired", expired, false}, {"old-0", nil, false}} {
		e, ok := c.sources.Load(mustKey(t, c, tt.scope))
		if ok != tt.kept {
			t.Errorf("entry %s kept = %v, want %v", tt.scope, ok, tt.kept)
		}
		if ok && tt.ts != nil && e != tt.ts.entry {
			t.Errorf("entry %s was replaced", tt.scope)
		}
	}
	// A TokenSource whose entry was dropped still hands out its token.
	expired.entry.cur.Store(&cachedToken{tok: &TokenResponse{Expiry: now().Add(time.Hour)}, renewAt: now().Add(time.Minute)})
	if tok, err := expired.Token(context.Background()); err != nil || tok == nil {
		t.Errorf("a source whose entry was dropped: %v, %v", tok, err)
	}
	if got := c.sweepAt.Load(); got != minSweep {
		t.Errorf("next sweep at %d entries, want %d", got, minSweep)
	}
}

func mustKey(t *testing.T, c *Client, scope string) sourceKey {
	t.Helper()
	p, err := c.prepare(TokenRequest{Scopes: []string{scope}})
	if err != nil {
		t.Fatal(err)
	}
	return p.key
}

// TestExchangeCacheBound: exchanges for ever new subject tokens do not grow
// the cache past maxExchanges, even while their tokens are valid, and the
// client_credentials tokens are kept (FK3: no new token while one is
// valid).
func TestExchangeCacheBound(t *testing.T) {
	now := func() time.Time { return testNow }
	c := newTestClient(t, Config{Now: now})
	own, err := c.TokenSource(TokenRequest{Scopes: []string{"own"}})
	if err != nil {
		t.Fatal(err)
	}
	own.entry.cur.Store(&cachedToken{tok: &TokenResponse{Expiry: now().Add(time.Hour)}})
	var busy *TokenSource
	for i := range 3 * maxExchanges {
		ts, err := c.ExchangeTokenSource(ExchangeRequest{SubjectToken: fmt.Sprint("subject-", i), Scopes: []string{"downstream"}})
		if err != nil {
			t.Fatal(err)
		}
		ts.entry.cur.Store(&cachedToken{tok: &TokenResponse{Expiry: now().Add(time.Hour)}})
		if i == 0 {
			busy = ts
			busy.entry.flight = &flight{done: make(chan struct{})} // a request in flight
		}
		if got := c.exchangeCount.Load(); got > maxExchanges {
			t.Fatalf("after %d exchange sources: %d exchange entries, want at most %d", i+1, got, maxExchanges)
		}
	}
	if e, ok := c.sources.Load(mustKey(t, c, "own")); !ok || e != own.entry {
		t.Error("the client_credentials token was dropped")
	}
	k, _ := c.prepareExchange(ExchangeRequest{SubjectToken: "subject-0", Scopes: []string{"downstream"}})
	if e, ok := c.sources.Load(k.key); !ok || e != busy.entry {
		t.Error("an entry with a request in flight was dropped")
	}
	// Same subject, same request: the same entry; another request for it:
	// another.
	a, _ := c.ExchangeTokenSource(ExchangeRequest{SubjectToken: "s", Scopes: []string{"x", "y"}})
	b, _ := c.ExchangeTokenSource(ExchangeRequest{SubjectToken: "s", Scopes: []string{"y", "x"}})
	d, _ := c.ExchangeTokenSource(ExchangeRequest{SubjectToken: "s", Scopes: []string{"z"}})
	o, _ := c.ExchangeTokenSource(ExchangeRequest{SubjectToken: "t", Scopes: []string{"x", "y"}})
	if a.entry != b.entry || a.entry == d.entry || a.entry == o.entry {
		t.Error("exchange sources are not keyed by subject token and request")
	}
}
