package authorize_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/servertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// startPair starts two instances of one service on one PostgreSQL
// database.
func startPair(t *testing.T) (a, b *harness) {
	storage := pgtest.URL(t)
	dir := t.TempDir()
	clock := servertest.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	one := func(instance string) *harness {
		login := &testIDP{}
		s := servertest.Start(t, servertest.Options{
			Registry: registry, Storage: storage, Dir: dir, Clock: clock, Login: login,
			Settings: "environment: test\ninstance: " + instance,
		})
		login.e, login.now = s.Srv.Authorize(), s.Clock.Now
		return &harness{Server: s, t: t, client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	}
	return one("a"), one("b")
}

// TestCodeAcrossInstances: a code issued at one instance is redeemed at
// another, once; the pushed request too is spent wherever it is used.
func TestCodeAcrossInstances(t *testing.T) {
	a, b := startPair(t)
	l := a.newLogin("web")
	key := newDPoPKey(t)
	p := a.par(l, key, nil)
	if p.status != http.StatusCreated {
		t.Fatalf("PAR at a: %d %s", p.status, p.raw)
	}
	uri := p.body["request_uri"].(string)
	u := b.location(b.authorize(url.Values{"client_id": {"web"}, "request_uri": {uri}}))
	if r := a.authorize(url.Values{"client_id": {"web"}, "request_uri": {uri}}); r.status != http.StatusBadRequest {
		t.Fatalf("request_uri spent at b, used again at a: %d %s", r.status, r.raw)
	}
	code := u.Query().Get("code")
	if r := a.redeem(l, "web", code, key, nil); r.status != http.StatusOK {
		t.Fatalf("redeem at a: %d %s", r.status, r.raw)
	}
	if r := b.redeem(l, "web", code, key, nil); r.code() != "invalid_grant" {
		t.Fatalf("second redemption at b: %d %s", r.status, r.raw)
	}
}
