package server_test

import (
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// TestInstanceLease: two servers on one store with one instance name would
// fork its audit chain, so the second refuses to start, with a message
// that names the first and says what to change. Another name starts
// beside it. A server that crashed (never released its name) holds it
// until its lease expires by the clock; one that stopped cleanly frees it
// at once.
func TestInstanceLease(t *testing.T) {
	dir := t.TempDir()
	clock := servertest.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	start := func(instance string) (*servertest.Server, error) {
		return servertest.TryStart(t, servertest.Options{Dir: dir, Clock: clock, Settings: "instance: " + instance})
	}
	a, err := start("sts-a")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := regexp.MustCompile("^" + regexp.QuoteMeta(`server: instance "sts-a" is already served by pid `) + `\d+` +
		regexp.QuoteMeta(" on "+host+" (") + `[0-9a-f]{8}` +
		regexp.QuoteMeta(") since 2026-11-24T12:00:00Z; give each server its own `instance` in the configuration "+
			"(a server that stopped without shutting down cleanly holds it until 2026-11-24T12:00:30Z): "+
			"store: instance lease held by another server") + "$")
	refused := func(when string) {
		t.Helper()
		_, err := start("sts-a")
		if !errors.Is(err, store.ErrLeaseHeld) || !want.MatchString(err.Error()) {
			t.Fatalf("%s: err = %v, want one matching %s", when, err, want)
		}
	}
	refused("beside a running server")
	if _, err := start("sts-b"); err != nil {
		t.Fatalf("another instance name on the same store: %v", err)
	}

	// a crashes: it stops answering and never releases its name.
	a.HTTP.Close()
	clock.Advance(server.DefaultLeaseTTL - time.Microsecond)
	refused("a microsecond before the crashed server's lease expires")
	clock.Advance(time.Microsecond)
	c, err := start("sts-a")
	if err != nil {
		t.Fatalf("once the crashed server's lease expired: %v", err)
	}

	// c stops cleanly: the name is free at once, by the same clock.
	c.HTTP.Close()
	if err := c.Srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := start("sts-a"); err != nil {
		t.Fatalf("after a clean stop: %v", err)
	}
}
