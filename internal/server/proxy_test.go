package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/servertest"
)

// behindProxy is the setting under which this test's client is the proxy:
// requests come from 127.0.0.1 with the X-Forwarded-For a proxy that
// appends would send.
const behindProxy = "trusted_proxies: [127.0.0.1]"

// postToken sends an empty token request with the given X-Forwarded-For
// and returns the status and error_description. The address limit is
// checked before anything else, so an empty request tells whether the
// address was let through (400: the request itself is wrong) or not (429).
func postToken(t *testing.T, base, xff string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/connect/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("X-Forwarded-For %q: %d, body: %v", xff, resp.StatusCode, err)
	}
	return resp.StatusCode, body.Description
}

// A proxy that appends to X-Forwarded-For (nginx's
// $proxy_add_x_forwarded_for, HAProxy's option forwardfor) passes on
// whatever the client put in front of the address it saw. An attacker at
// 203.0.113.7 who makes up a new leftmost entry for every request must
// still be one address to the rate limiter.
func TestSpoofedForwardedForSharesOneBucket(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Settings: "rate_limit: {per_address: 1, address_burst: 2, " + behindProxy + "}"})
	var got []int
	for i := range 10 {
		status, desc := postToken(t, s.URL, fmt.Sprintf("10.9.%d.1, 203.0.113.7", i))
		got = append(got, status)
		if status == 429 && !strings.Contains(desc, "this address") {
			t.Fatalf("request %d: 429 %q, want the address limit", i, desc)
		}
	}
	want := []int{400, 400, 429, 429, 429, 429, 429, 429, 429, 429}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v: the burst of 2, then the address limit", got, want)
	}
}

// The limiter refuses new addresses while it is full, so made-up
// addresses that each counted as a source would fill it and lock out
// every real client. They must not count.
func TestSpoofedForwardedForCannotLockOut(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Settings: "rate_limit: {per_address: 1, address_burst: 1, max_addresses: 4, " + behindProxy + "}"})
	for i := range 50 {
		postToken(t, s.URL, fmt.Sprintf("10.9.%d.1, 203.0.113.7", i))
	}
	for _, real := range []string{"198.51.100.9", "198.51.100.10", "198.51.100.11"} {
		if status, desc := postToken(t, s.URL, real); status != 400 {
			t.Fatalf("real client %s after the flood: %d %q, want 400 (let through, then refused as an empty request)", real, status, desc)
		}
	}
}

// X-Forwarded-For from a peer that is not a trusted proxy is ignored: a
// client that reaches Tillit directly cannot pick its address.
func TestForwardedForIgnoredFromOtherPeers(t *testing.T) {
	tests := []struct {
		name     string
		settings string
	}{
		{name: "no trusted proxies", settings: "rate_limit: {per_address: 1, address_burst: 2}"},
		{name: "peer not in trusted_proxies", settings: "rate_limit: {per_address: 1, address_burst: 2, trusted_proxies: [192.0.2.0/24, '2001:db8::/32']}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Settings: tt.settings})
			var got []int
			for i := range 5 {
				status, _ := postToken(t, s.URL, fmt.Sprintf("203.0.113.%d", i))
				got = append(got, status)
			}
			if want := "[400 400 429 429 429]"; fmt.Sprint(got) != want {
				t.Fatalf("statuses %v, want %s: every request is the peer's", got, want)
			}
		})
	}
}
