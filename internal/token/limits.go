package token

import (
	"net"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/ratelimit"
)

// limitAddress and limitClient apply the rate limits: per source address
// before anything is verified, per client once it is authenticated. The
// token, introspection and revocation endpoints share both budgets
// (Shared), so that an address or a client cannot get round its limit, or
// make the service verify signatures without one, by calling another
// endpoint.
func (b *base) limitAddress(r *http.Request, now time.Time) error {
	if b.cfg.AddressLimit == nil {
		return nil // off (the default): no need to work out the address
	}
	if ok, wait := b.cfg.AddressLimit.Allow(b.sourceAddress(r), now); !ok {
		b.cfg.Metrics.Limited("address")
		return limited("address", wait)
	}
	return nil
}

func (b *base) limitClient(clientID string, now time.Time) error {
	if ok, wait := b.cfg.ClientLimit.Allow(clientID, now); !ok {
		b.cfg.Metrics.Limited("client")
		return limited("client", wait)
	}
	return nil
}

// limited answers a rate-limited request (RFC 6585 §4). OAuth has no code
// for it; temporarily_unavailable says to come back, Retry-After when.
func limited(what string, wait time.Duration) *oauth.Error {
	oe := oauth.New(oauth.CodeTemporarilyUnavailable, "too many requests from this "+what+": try again later")
	oe.Status = http.StatusTooManyRequests
	oe.RetryAfter = ratelimit.RetryAfter(wait)
	return oe
}

// sourceAddress is the address a request came from: the connection's
// peer. Behind trusted proxies the server has already put the client's
// address there (internal/server, trusted_proxies).
func (b *base) sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
