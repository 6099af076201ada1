package server

import (
	"net/http"
	"net/netip"
	"strings"
)

// proxies are the trusted proxies (rate_limit.trusted_proxies).
type proxies []netip.Prefix

func (ps proxies) trusted(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// behindProxies makes r.RemoteAddr the client's address when the request
// came through trusted proxies, so that everything after it, the address
// rate limit first, sees the client rather than the proxy. The port of a
// rewritten address is 0: the client's port is not known.
func (ps proxies) behindProxies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		addr := ps.clientAddr(peer.Addr(), r.Header.Values("X-Forwarded-For"))
		if addr == peer.Addr() {
			next.ServeHTTP(w, r)
			return
		}
		r2 := new(http.Request)
		*r2 = *r // handlers must not change the request they are given
		r2.RemoteAddr = netip.AddrPortFrom(addr, 0).String()
		next.ServeHTTP(w, r2)
	})
}

// clientAddr is the address a request came from, given its peer and its
// X-Forwarded-For header lines. Each proxy appends the address it received
// the request from, so the entries are read from the right: while the
// address reached is a trusted proxy, the entry before it was written by
// that proxy and is believed; the first address that is not a trusted
// proxy is the client. Entries further left were written by the client (or
// by proxies it chose) and are never read, so making them up changes
// nothing. When the peer is not a trusted proxy the header is ignored.
//
// An entry that is not an address stops the walk at the last trusted
// address reached: it cannot be believed, and what is left of it even
// less. When every entry is a trusted proxy the leftmost is the source.
func (ps proxies) clientAddr(peer netip.Addr, xff []string) netip.Addr {
	addr := peer.Unmap()
	if !ps.trusted(addr) {
		return addr
	}
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			j := strings.LastIndexByte(line, ',')
			next, ok := parseForwarded(strings.TrimSpace(line[j+1:]))
			if !ok {
				return addr
			}
			addr = next
			if !ps.trusted(addr) {
				return addr
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return addr
}

// parseForwarded reads one X-Forwarded-For entry: an IP address, as nginx
// and HAProxy write it, or an address with a port, as some proxies do.
func parseForwarded(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), true
}
