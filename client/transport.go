package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/tillit-sts/tillit/dpop"
)

// Transport is an http.RoundTripper that calls an API as the client: it
// adds "Authorization: DPoP <token>" with a token from Source and a new
// DPoP proof (with ath) to every request, so that
//
//	http.Client{Transport: &client.Transport{Source: ts}}
//
// is all an application needs. For a Bearer token it adds
// "Authorization: Bearer <token>" and no proof.
//
// When the API answers 401 with WWW-Authenticate: DPoP
// error="use_dpop_nonce" and a DPoP-Nonce header (RFC 9449 §9), the request
// is sent once more with a proof carrying that nonce. The nonce is kept per
// origin for the next requests. When many requests go to an origin at once
// before its first answer, one goes first and the others wait for the
// nonce it brings back, so that they need no round trip of their own. A
// request with a body is sent again only if
// it has GetBody, which http.NewRequest sets for bytes, strings and
// bytes.Buffer bodies; otherwise the 401 is returned as it is.
//
// The caller's request is never modified.
type Transport struct {
	// Source gets the tokens. Required.
	Source *TokenSource
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// maxDrain bounds what is read from a refused response before it is closed,
// so that its connection can be reused without reading a large body.
const maxDrain = 64 << 10

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req)
		return nil, fmt.Errorf("client: Transport has no Source")
	}
	tok, err := t.Source.Token(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	return t.Source.c.send(req, tok, t.Base)
}

// send makes the API call with tok, as Transport describes.
func (c *Client) send(req *http.Request, tok *TokenResponse, base http.RoundTripper) (*http.Response, error) {
	var err error
	if base == nil {
		base = http.DefaultTransport
	}
	if !strings.EqualFold(tok.TokenType, "DPoP") {
		r := req.Clone(req.Context())
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		r.Header.Del(headerDPoP)
		return base.RoundTrip(r)
	}

	origin := originOf(req.URL)
	nonce, release, err := c.apiNonces.first(req.Context(), origin)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("client: waiting for the API's first answer: %w", err)
	}
	defer release() // a no-op once the first answer is in
	for attempt := 1; ; attempt++ {
		r := req.Clone(req.Context())
		if attempt > 1 && req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, fmt.Errorf("client: request body for the nonce retry: %w", err)
			}
		}
		proof, err := c.dpop.Proof(req.Method, req.URL.String(), dpop.ProofOptions{AccessToken: tok.AccessToken, Nonce: nonce, Now: c.now()})
		if err != nil {
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, fmt.Errorf("client: %w", err)
		}
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set(headerDPoP, proof)

		resp, err := base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		fresh := resp.Header.Get(headerDPoPNonce)
		c.apiNonces.answered(origin, fresh)
		release()
		if attempt > 1 || fresh == "" || fresh == nonce || !asksForNonce(resp) || !replayable(req) {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		resp.Body.Close()
		nonce = fresh
	}
}

// asksForNonce reports whether resp is an API's request for a DPoP nonce
// (RFC 9449 §9): 401 with a DPoP challenge whose error is use_dpop_nonce.
func asksForNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "DPoP") && strings.Contains(params, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}

// closeBody closes req's body, as a RoundTripper must even when it fails.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// originOf is scheme://host[:port], the unit a server's nonces belong to.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// maxNonceOrigins bounds the nonce cache: a client that follows links to
// many hosts must not grow it without end. Losing a nonce costs one round
// trip.
const maxNonceOrigins = 256

// nonceCache holds the last DPoP nonce of each origin, and coordinates
// the first calls to an origin: when many goroutines call an API at once
// before any nonce is known, one request goes first and the others wait
// for its answer, which carries the nonce they need (or shows that the API
// hands out none). Without this, each would make its own use_dpop_nonce
// round trip.
type nonceCache struct {
	mu sync.Mutex
	// m maps an origin to its last nonce; "" means the origin has
	// answered without one.
	m map[string]string
	// pending holds the origins whose first request is on its way; the
	// channel is closed when its answer is in.
	pending map[string]chan struct{}
}

// first returns the nonce to use for a call to origin. When the origin is
// new and another call to it is on its way, it waits for that call's
// answer. When the origin is new and no call is on its way, this call goes
// first: release must be called when its answer is in (answered), and may
// be called more than once.
func (n *nonceCache) first(ctx context.Context, origin string) (nonce string, release func(), err error) {
	n.mu.Lock()
	if v, ok := n.m[origin]; ok {
		n.mu.Unlock()
		return v, func() {}, nil
	}
	if ch, ok := n.pending[origin]; ok {
		n.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
		// If the first call failed, the nonce is still unknown: go
		// without, and pay the round trip.
		return n.get(origin), func() {}, nil
	}
	if n.pending == nil {
		n.pending = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	n.pending[origin] = ch
	n.mu.Unlock()
	var once sync.Once
	return "", func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.pending, origin)
			n.mu.Unlock()
			close(ch)
		})
	}, nil
}

func (n *nonceCache) get(origin string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[origin]
}

// answered records an answer from origin with DPoP-Nonce nonce, which may
// be empty: a new nonce replaces the last, and an origin that answers
// without one keeps the nonce it gave before.
func (n *nonceCache) answered(origin, nonce string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]string{}
	}
	old, ok := n.m[origin]
	if ok && (nonce == "" || nonce == old) {
		return
	}
	if !ok && len(n.m) >= maxNonceOrigins {
		for k := range n.m { // drop any one
			delete(n.m, k)
			break
		}
	}
	n.m[origin] = nonce
}
