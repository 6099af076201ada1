package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	ps := proxies{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:1::/48"),
	}
	tests := []struct {
		name string
		peer string
		xff  []string // header lines, in the order received
		want string
	}{
		{name: "peer not a trusted proxy: header ignored", peer: "198.51.100.1", xff: []string{"203.0.113.7"}, want: "198.51.100.1"},
		{name: "untrusted peer claiming a trusted hop", peer: "198.51.100.1", xff: []string{"203.0.113.7, 10.0.0.2"}, want: "198.51.100.1"},
		{name: "no header: the proxy itself", peer: "127.0.0.1", want: "127.0.0.1"},
		{name: "one proxy", peer: "127.0.0.1", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoofed leftmost entry", peer: "127.0.0.1", xff: []string{"10.9.3.1, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoofed trusted address on the left", peer: "127.0.0.1", xff: []string{"10.0.0.5, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "no spaces", peer: "127.0.0.1", xff: []string{"10.9.3.1,203.0.113.7"}, want: "203.0.113.7"},
		{name: "two proxies", peer: "127.0.0.1", xff: []string{"192.0.2.1, 203.0.113.7, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "three proxies", peer: "127.0.0.1", xff: []string{"192.0.2.1, 203.0.113.7, 10.1.0.1, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "header lines read from the last", peer: "127.0.0.1", xff: []string{"192.0.2.1, 192.0.2.2", "203.0.113.7, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "client's own line first", peer: "127.0.0.1", xff: []string{"192.0.2.1", "203.0.113.7"}, want: "203.0.113.7"},
		{name: "chain across lines", peer: "127.0.0.1", xff: []string{"203.0.113.7", "10.0.0.2"}, want: "203.0.113.7"},
		{name: "every entry a trusted proxy", peer: "127.0.0.1", xff: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "garbage after a trusted hop", peer: "127.0.0.1", xff: []string{"203.0.113.7, junk, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "garbage rightmost", peer: "127.0.0.1", xff: []string{"203.0.113.7, junk"}, want: "127.0.0.1"},
		{name: "trailing comma", peer: "127.0.0.1", xff: []string{"203.0.113.7,"}, want: "127.0.0.1"},
		{name: "empty header", peer: "127.0.0.1", xff: []string{""}, want: "127.0.0.1"},
		{name: "entry with a port", peer: "127.0.0.1", xff: []string{"203.0.113.7:5123"}, want: "203.0.113.7"},
		{name: "IPv6 entry with a port", peer: "127.0.0.1", xff: []string{"[2001:db8::7]:443"}, want: "2001:db8::7"},
		{name: "IPv6 client", peer: "127.0.0.1", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "IPv6 entry with a zone", peer: "127.0.0.1", xff: []string{"fe80::1%eth0"}, want: "fe80::1"},
		{name: "IPv4-mapped entry", peer: "127.0.0.1", xff: []string{"::ffff:203.0.113.7"}, want: "203.0.113.7"},
		{name: "IPv4-mapped peer", peer: "::ffff:127.0.0.1", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "IPv6 proxy", peer: "2001:db8:1::5", xff: []string{"192.0.2.9, 203.0.113.7"}, want: "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ps.clientAddr(netip.MustParseAddr(tt.peer), tt.xff); got.String() != tt.want {
				t.Fatalf("clientAddr(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

// behindProxies hands on a copy whose RemoteAddr is the client's, and the
// request untouched when there is nothing to change.
func TestBehindProxies(t *testing.T) {
	ps := proxies{netip.MustParsePrefix("127.0.0.1/32")}
	var seen string
	h := ps.behindProxies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	tests := []struct {
		name   string
		remote string
		xff    string
		want   string
	}{
		{name: "through the proxy", remote: "127.0.0.1:40000", xff: "192.0.2.1, 203.0.113.7", want: "203.0.113.7:0"},
		{name: "IPv6 client", remote: "127.0.0.1:40000", xff: "2001:db8::7", want: "[2001:db8::7]:0"},
		{name: "the proxy itself", remote: "127.0.0.1:40000", want: "127.0.0.1:40000"},
		{name: "not through the proxy", remote: "198.51.100.1:40000", xff: "203.0.113.7", want: "198.51.100.1:40000"},
		{name: "peer not an address", remote: "@", xff: "203.0.113.7", want: "@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/connect/token", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if seen != tt.want {
				t.Fatalf("handler saw RemoteAddr %q, want %q", seen, tt.want)
			}
			if r.RemoteAddr != tt.remote {
				t.Fatalf("the caller's request was changed: %q", r.RemoteAddr)
			}
		})
	}
}

// Whatever a client puts in X-Forwarded-For, the entry the trusted proxy
// appended decides; and the header never matters from another peer.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"", "10.9.3.1", "10.0.0.2, 10.0.0.3", "junk,,", "[::1]:80, ::ffff:1.2.3.4", "fe80::1%eth0", "  ,  "} {
		f.Add(s)
	}
	ps := proxies{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	client := netip.MustParseAddr("203.0.113.7")
	f.Fuzz(func(t *testing.T, spoofed string) {
		lines := []string{spoofed + ", 203.0.113.7"}
		if got := ps.clientAddr(netip.MustParseAddr("127.0.0.1"), lines); got != client {
			t.Fatalf("through the proxy: %s, want %s", got, client)
		}
		lines = []string{spoofed, "203.0.113.7, 10.0.0.2"}
		if got := ps.clientAddr(netip.MustParseAddr("127.0.0.1"), lines); got != client {
			t.Fatalf("through two proxies: %s, want %s", got, client)
		}
		peer := netip.MustParseAddr("198.51.100.1")
		if got := ps.clientAddr(peer, []string{spoofed}); got != peer {
			t.Fatalf("from another peer: %s, want %s", got, peer)
		}
	})
}
