package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// TokenSource hands out access tokens for one kind of token request (or,
// from ExchangeTokenSource, one token exchange), from a cache shared by
// every TokenSource of the same Client and request:
// HelseID asks clients not to fetch a new token while they hold a valid one
// (FK3). It is safe for concurrent use; make one per API and keep it.
//
// A token is renewed Config.ExpiryMargin before it expires. When many
// goroutines need a new token at once, one request goes to the STS and the
// others wait for its answer. The cache forgets requests whose token has
// expired once it holds more than a few dozen, so a multi-tenant client
// acting for ever new organisations does not grow it without bound.
type TokenSource struct {
	c     *Client
	p     *prepared
	entry *sourceEntry
}

// sourceEntry is the cache slot of one sourceKey.
type sourceEntry struct {
	cur      atomic.Pointer[cachedToken]
	born     time.Time // when the entry was made, by the Client's clock
	exchange bool      // the entry is an exchange's (ExchangeTokenSource)

	mu     sync.Mutex
	flight *flight // the request in progress, if any
}

type cachedToken struct {
	tok     *TokenResponse
	renewAt time.Time
}

// flight is one token request that several callers wait for.
type flight struct {
	done chan struct{}
	tok  *TokenResponse
	err  error
}

// TokenSource checks r and returns a TokenSource for it. Empty fields of r
// take the Client's defaults, as in Token. It does no I/O.
func (c *Client) TokenSource(r TokenRequest) (*TokenSource, error) {
	p, err := c.prepare(r)
	if err != nil {
		return nil, err
	}
	return c.source(p), nil
}

// ExchangeTokenSource checks r and returns a TokenSource for the tokens
// that exchanging r.SubjectToken gets (see Exchange), so that
// Transport{Source: ts} calls a downstream API with them. An API makes one
// per request it serves, with the token it received:
//
//	subject, _ := resource.AccessTokenFromContext(r.Context())
//	ts, err := c.ExchangeTokenSource(client.ExchangeRequest{SubjectToken: subject, Scopes: ...})
//
// The exchanged token is cached per subject token and request, so that
// the calls a client makes with one token cost one exchange, and is
// renewed as a TokenSource's tokens are; an exchanged token lives no longer
// than its subject token, after which the exchange is refused. The cache
// keeps the tokens of at most a thousand or so subject tokens; beyond that
// it drops some, and their next call exchanges again. It does no I/O.
func (c *Client) ExchangeTokenSource(r ExchangeRequest) (*TokenSource, error) {
	p, err := c.prepareExchange(r)
	if err != nil {
		return nil, err
	}
	return c.source(p), nil
}

// source returns the TokenSource of p, on p's cache entry.
func (c *Client) source(p *prepared) *TokenSource {
	e, loaded := c.sources.LoadOrStore(p.key, &sourceEntry{born: c.now(), exchange: p.exchange})
	if !loaded {
		n := c.sourceCount.Add(1)
		if p.exchange && c.exchangeCount.Add(1) > maxExchanges || n > c.sweepAt.Load() {
			c.sweepSources()
		}
	}
	return &TokenSource{c: c, p: p, entry: e.(*sourceEntry)}
}

// minSweep is the number of cache entries below which the cache is never
// swept.
const minSweep = 64

// maxExchanges bounds the cache entries of exchanges: an API that
// exchanges the token of every caller would otherwise keep one for each
// caller whose token is still valid. Beyond it, entries are dropped
// whatever they hold, which costs a dropped caller one more exchange.
const maxExchanges = 1024

// idleAfter is how long an entry without a token is kept: long enough
// that a TokenSource made just now gets to ask for its first one.
const idleAfter = time.Minute

// sweepSources drops the cache entries that hold no valid token and have
// no request in flight, so that a client acting for ever new organisations
// (a multi-tenant client) does not keep an entry for each of them for
// good. A TokenSource whose entry is dropped keeps working with it; only
// a TokenSource made later for the same request starts a new entry, which
// costs nothing since the dropped one held no valid token. The next sweep
// comes when the cache has doubled, so sweeping costs O(1) per entry made.
func (c *Client) sweepSources() {
	if !c.sweeping.TryLock() {
		return // another goroutine is at it
	}
	defer c.sweeping.Unlock()
	now := c.now()
	drop := func(k any, e *sourceEntry) {
		if c.sources.CompareAndDelete(k, e) {
			c.sourceCount.Add(-1)
			if e.exchange {
				c.exchangeCount.Add(-1)
			}
		}
	}
	c.sources.Range(func(k, v any) bool {
		if e := v.(*sourceEntry); e.idle(now) {
			drop(k, e)
		}
		return true
	})
	// Still too many exchanges: drop those with no request in flight until
	// a quarter of the room is free again, so that the next sweep is a
	// while off.
	if c.exchangeCount.Load() > maxExchanges {
		c.sources.Range(func(k, v any) bool {
			if e := v.(*sourceEntry); e.exchange && !e.busy() {
				drop(k, e)
			}
			return c.exchangeCount.Load() > maxExchanges*3/4
		})
	}
	c.sweepAt.Store(max(minSweep, 2*c.sourceCount.Load()))
}

// busy reports whether e has a request in flight.
func (e *sourceEntry) busy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.flight != nil
}

// idle reports whether e holds no valid token, has no request in flight
// and is older than idleAfter.
func (e *sourceEntry) idle(now time.Time) bool {
	if now.Sub(e.born) < idleAfter {
		return false
	}
	if t := e.cur.Load(); t != nil && now.Before(t.tok.Expiry) {
		return false
	}
	return !e.busy()
}

// Token returns a valid access token: the cached one, or a new one. The
// result is shared with other callers and must not be modified. Errors from
// the token endpoint are *Error and are not cached: the next call tries
// again.
func (s *TokenSource) Token(ctx context.Context) (*TokenResponse, error) {
	e := s.entry
	for {
		if t := e.cur.Load(); t != nil && s.c.now().Before(t.renewAt) {
			return t.tok, nil
		}
		e.mu.Lock()
		if t := e.cur.Load(); t != nil && s.c.now().Before(t.renewAt) {
			e.mu.Unlock()
			return t.tok, nil
		}
		f := e.flight
		if f == nil {
			f = &flight{done: make(chan struct{})}
			e.flight = f
			e.mu.Unlock()
			s.fetch(ctx, f)
			return f.tok, f.err
		}
		e.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("client: waiting for a token: %w", ctx.Err())
		}
		// A request that failed because its caller gave up says nothing
		// about this caller's chances: try again, possibly as the leader.
		if f.err != nil && isContextErr(f.err) && ctx.Err() == nil {
			continue
		}
		return f.tok, f.err
	}
}

// fetch makes the token request for f and publishes the result.
func (s *TokenSource) fetch(ctx context.Context, f *flight) {
	f.tok, f.err = s.c.fetch(ctx, s.p)
	e := s.entry
	e.mu.Lock()
	if f.err == nil {
		e.cur.Store(&cachedToken{tok: f.tok, renewAt: s.c.renewAt(f.tok)})
	}
	e.flight = nil
	e.mu.Unlock()
	close(f.done)
}

// renewAt is when a token should be replaced: the margin before its
// expiry, or half-way through a life shorter than two margins. A token
// without expires_in is not kept at all.
func (c *Client) renewAt(t *TokenResponse) time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	return t.Expiry.Add(-min(c.margin, life/2))
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// OAuth2 adapts s to golang.org/x/oauth2's TokenSource, for code that
// already takes one. That interface has no context, so ctx is used for
// every token request the adapter makes.
//
// oauth2.Transport sends a token but no DPoP proof, so an API that requires
// DPoP refuses its requests: use Transport for those. The adapter suits a
// Bearer token source, or code that only reads the token.
func (s *TokenSource) OAuth2(ctx context.Context) oauth2.TokenSource {
	return oauth2Source{s: s, ctx: ctx}
}

type oauth2Source struct {
	s   *TokenSource
	ctx context.Context
}

func (o oauth2Source) Token() (*oauth2.Token, error) {
	t, err := o.s.Token(o.ctx)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry, ExpiresIn: t.ExpiresIn}, nil
}
