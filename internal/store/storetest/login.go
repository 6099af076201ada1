package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// loginZone is a zone other than UTC: records created with times in it
// must come back in UTC.
var loginZone = time.FixedZone("CEST", 2*60*60)

// at is base plus d in loginZone, with a sub-microsecond part the store
// may drop.
func at(d time.Duration) time.Time { return base.Add(d + 789*time.Nanosecond).In(loginZone) }

func runLogin(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PushedRequest", func(t *testing.T) { testPushedRequest(t, open) })
	t.Run("PushedRequestRefusals", func(t *testing.T) { testPushedRequestRefusals(t, open) })
	t.Run("PushedRequestRace", func(t *testing.T) { testPushedRequestRace(t, open) })
	t.Run("AuthorizationCode", func(t *testing.T) { testAuthorizationCode(t, open) })
	t.Run("AuthorizationCodeReuse", func(t *testing.T) { testAuthorizationCodeReuse(t, open) })
	t.Run("AuthorizationCodeExpired", func(t *testing.T) { testAuthorizationCodeExpired(t, open) })
	t.Run("AuthorizationCodeRace", func(t *testing.T) { testAuthorizationCodeRace(t, open) })
	t.Run("Session", func(t *testing.T) { testSession(t, open) })
	t.Run("SessionClientsRace", func(t *testing.T) { testSessionClientsRace(t, open) })
	t.Run("UpstreamLogin", func(t *testing.T) { testUpstreamLogin(t, open) })
	t.Run("UpstreamLoginRace", func(t *testing.T) { testUpstreamLoginRace(t, open) })
	t.Run("DeleteExpired", func(t *testing.T) { testDeleteExpiredLoginState(t, open) })
	t.Run("Duplicates", func(t *testing.T) { testLoginDuplicates(t, open) })
}

func pushedRequest(id string) store.PushedRequest {
	return store.PushedRequest{
		ID:        store.SecretID(id),
		ClientID:  "client-1",
		JKT:       "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		Params:    []byte(`{"scope":"openid profile","state":"s"}` + "\x00\xff"),
		CreatedAt: at(0),
		ExpiresAt: at(90 * time.Second),
	}
}

func login() store.Login {
	return store.Login{
		Subject:       "tzto6gPhyTQw2bR/Wl0kgF/mTH+jdQoUBvaYSObfmlQ=",
		PID:           "17056600574",
		SecurityLevel: "4",
		HPRNumber:     "431001110",
		AMR:           []string{"pwd"},
		AuthTime:      at(-time.Minute),
		IdP:           "testidp-oidc",
		Names:         store.Names{Given: "Kari", Middle: "Mari", Family: "Nordmann"},
	}
}

func authorizationCode(id string) store.AuthorizationCode {
	return store.AuthorizationCode{
		ID:            store.SecretID(id),
		ClientID:      "client-1",
		RedirectURI:   "https://epj.example/callback?x=1",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		JKT:           "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		SessionID:     store.SecretID("session-" + id),
		Login:         login(),
		Scopes:        []string{"openid", "profile", "nhn:deft/api", "offline_access"},
		Resources:     []string{"nhn:deft", "e-helse:sfm.api"},
		Nonce:         "n-0S6_WzA2Mj",
		CreatedAt:     at(0),
		ExpiresAt:     at(time.Minute),
	}
}

func session(id string) store.Session {
	return store.Session{
		ID:        store.SecretID(id),
		Login:     login(),
		Clients:   []string{"client-1"},
		CreatedAt: at(0),
		ExpiresAt: at(8 * time.Hour),
	}
}

func upstreamLogin(id string) store.UpstreamLogin {
	return store.UpstreamLogin{
		ID:           store.SecretID(id),
		IdP:          "idporten",
		Nonce:        "upstream-nonce",
		CodeVerifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
		Return:       []byte(`{"request_uri":"urn:x"}`),
		CreatedAt:    at(0),
		ExpiresAt:    at(10 * time.Minute),
	}
}

// storeTimes returns the record with every time as the store keeps it:
// UTC at Precision.
func storeTimes(ts ...*time.Time) {
	for _, tm := range ts {
		if !tm.IsZero() {
			*tm = canonTime(*tm)
		}
	}
}

func testPushedRequest(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	want := pushedRequest("uri-1")
	if err := s.CreatePushedRequest(ctx, want); err != nil {
		t.Fatalf("CreatePushedRequest: %v", err)
	}
	now := at(30 * time.Second)
	got, err := s.ConsumePushedRequest(ctx, now, want.ID, want.ClientID)
	if err != nil {
		t.Fatalf("ConsumePushedRequest: %v", err)
	}
	for _, tm := range []struct {
		name string
		t    time.Time
	}{{"CreatedAt", got.CreatedAt}, {"ExpiresAt", got.ExpiresAt}, {"ConsumedAt", got.ConsumedAt}} {
		checkStoreTime(t, tm.name, tm.t)
	}
	want.ConsumedAt = now
	storeTimes(&want.CreatedAt, &want.ExpiresAt, &want.ConsumedAt)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("consumed:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := s.ConsumePushedRequest(ctx, now, want.ID, want.ClientID); !errors.Is(err, store.ErrReplay) {
		t.Errorf("second consume: err = %v, want %v", err, store.ErrReplay)
	}
}

func testPushedRequestRefusals(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	r := pushedRequest("uri-1")
	if err := s.CreatePushedRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		now      time.Time
		id       string
		clientID string
		wantErr  error
	}{
		{"unknown request_uri", at(0), store.SecretID("other"), r.ClientID, store.ErrNotFound},
		{"another client", at(0), r.ID, "client-2", store.ErrNotFound},
		{"expired", at(90 * time.Second), r.ID, r.ClientID, store.ErrNotFound},
		{"the value, not its hash", at(0), "uri-1", r.ClientID, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.ConsumePushedRequest(ctx, tt.now, tt.id, tt.clientID); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// None of the refusals spent it.
	if _, err := s.ConsumePushedRequest(ctx, at(time.Second), r.ID, r.ClientID); err != nil {
		t.Errorf("consume after refusals: %v", err)
	}
}

func testPushedRequestRace(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r := pushedRequest("uri-1")
	if err := s.CreatePushedRequest(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	errs := race(goroutines, func(int) error {
		_, err := s.ConsumePushedRequest(t.Context(), at(time.Second), r.ID, r.ClientID)
		return err
	})
	exactlyOneWins(t, errs, store.ErrReplay)
}

func testAuthorizationCode(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	want := authorizationCode("code-1")
	if err := s.CreateAuthorizationCode(ctx, want); err != nil {
		t.Fatalf("CreateAuthorizationCode: %v", err)
	}
	got, err := s.AuthorizationCode(ctx, at(time.Second), want.ID)
	if err != nil {
		t.Fatalf("AuthorizationCode: %v", err)
	}
	checkStoreTime(t, "CreatedAt", got.CreatedAt)
	checkStoreTime(t, "ExpiresAt", got.ExpiresAt)
	checkStoreTime(t, "Login.AuthTime", got.Login.AuthTime)
	storeTimes(&want.CreatedAt, &want.ExpiresAt, &want.Login.AuthTime)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read:\n%+v\nwant\n%+v", got, want)
	}

	now := at(2 * time.Second)
	r := store.CodeRedemption{RefreshFamilyID: "fam-1", TokenIDs: []string{"AT-JTI", "ID-JTI"}}
	redeemed, err := s.RedeemAuthorizationCode(ctx, now, want.ID, r)
	if err != nil {
		t.Fatalf("RedeemAuthorizationCode: %v", err)
	}
	r.At = canonTime(now)
	want.Redemption = &r
	if redeemed.Redemption != nil {
		checkStoreTime(t, "Redemption.At", redeemed.Redemption.At)
	}
	if !reflect.DeepEqual(redeemed, want) {
		t.Errorf("redeemed:\n%+v\nwant\n%+v", redeemed, want)
	}
	// Reading it now shows the redemption.
	if got, err := s.AuthorizationCode(ctx, now, want.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("read after redemption = %+v, %v; want %+v", got, err, want)
	}
}

func testAuthorizationCodeReuse(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	c := authorizationCode("code-1")
	if err := s.CreateAuthorizationCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	first := store.CodeRedemption{RefreshFamilyID: "fam-1", TokenIDs: []string{"AT-1"}}
	if _, err := s.RedeemAuthorizationCode(ctx, at(time.Second), c.ID, first); err != nil {
		t.Fatal(err)
	}
	// A second redemption, even after the code's expiry, is refused and
	// says what the first one issued.
	for _, now := range []time.Time{at(2 * time.Second), at(time.Hour)} {
		got, err := s.RedeemAuthorizationCode(ctx, now, c.ID, store.CodeRedemption{RefreshFamilyID: "fam-2"})
		if !errors.Is(err, store.ErrReplay) {
			t.Fatalf("second redemption at %v: err = %v, want %v", now, err, store.ErrReplay)
		}
		if got.Redemption == nil || got.Redemption.RefreshFamilyID != "fam-1" || !slices.Equal(got.Redemption.TokenIDs, []string{"AT-1"}) ||
			!got.Redemption.At.Equal(canonTime(at(time.Second))) {
			t.Errorf("second redemption returned %+v, want the first redemption", got.Redemption)
		}
		if got.ClientID != c.ClientID || got.Login.PID != c.Login.PID {
			t.Errorf("second redemption returned the code %+v", got)
		}
	}
}

func testAuthorizationCodeExpired(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	c := authorizationCode("code-1")
	if err := s.CreateAuthorizationCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthorizationCode(ctx, c.ExpiresAt, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read at expiry: err = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.RedeemAuthorizationCode(ctx, c.ExpiresAt, c.ID, store.CodeRedemption{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeem at expiry: err = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.RedeemAuthorizationCode(ctx, at(0), store.SecretID("unknown"), store.CodeRedemption{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeem unknown: err = %v, want %v", err, store.ErrNotFound)
	}
	// The refused redemption at expiry spent nothing.
	if _, err := s.RedeemAuthorizationCode(ctx, at(time.Second), c.ID, store.CodeRedemption{}); err != nil {
		t.Errorf("redeem in time after the refusals: %v", err)
	}
}

func testAuthorizationCodeRace(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	c := authorizationCode("code-1")
	if err := s.CreateAuthorizationCode(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	got := make([]store.AuthorizationCode, goroutines)
	errs := race(goroutines, func(i int) error {
		var err error
		got[i], err = s.RedeemAuthorizationCode(t.Context(), at(time.Second), c.ID,
			store.CodeRedemption{RefreshFamilyID: fmt.Sprintf("fam-%d", i)})
		return err
	})
	winner := exactlyOneWins(t, errs, store.ErrReplay)
	if winner < 0 {
		return
	}
	// Every loser learns the winner's family, to revoke it.
	want := fmt.Sprintf("fam-%d", winner)
	for i, g := range got {
		if g.Redemption == nil || g.Redemption.RefreshFamilyID != want {
			t.Errorf("caller %d: redemption %+v, want family %s", i, g.Redemption, want)
		}
	}
}

func testSession(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	want := session("cookie-1")
	if err := s.CreateSession(ctx, want); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	got, err := s.Session(ctx, at(time.Second), want.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	checkStoreTime(t, "CreatedAt", got.CreatedAt)
	checkStoreTime(t, "Login.AuthTime", got.Login.AuthTime)
	storeTimes(&want.CreatedAt, &want.ExpiresAt, &want.Login.AuthTime)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read:\n%+v\nwant\n%+v", got, want)
	}

	for _, c := range []string{"client-2", "client-1", "client-2", "client-3"} {
		if err := s.AddSessionClient(ctx, at(time.Second), want.ID, c); err != nil {
			t.Fatalf("AddSessionClient(%s): %v", c, err)
		}
	}
	want.Clients = []string{"client-1", "client-2", "client-3"}
	if got, err := s.Session(ctx, at(time.Second), want.ID); err != nil || !slices.Equal(got.Clients, want.Clients) {
		t.Errorf("clients = %v, %v; want %v, each once in the order added", got.Clients, err, want.Clients)
	}

	tests := []struct {
		name    string
		now     time.Time
		id      string
		wantErr error
	}{
		{"unknown", at(0), store.SecretID("other"), store.ErrNotFound},
		{"expired", want.ExpiresAt, want.ID, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Session(ctx, tt.now, tt.id); !errors.Is(err, tt.wantErr) {
				t.Errorf("Session: err = %v, want %v", err, tt.wantErr)
			}
			if err := s.AddSessionClient(ctx, tt.now, tt.id, "client-9"); !errors.Is(err, tt.wantErr) {
				t.Errorf("AddSessionClient: err = %v, want %v", err, tt.wantErr)
			}
		})
	}

	deleted, err := s.DeleteSession(ctx, want.ID)
	if err != nil || !reflect.DeepEqual(deleted, want) {
		t.Errorf("DeleteSession = %+v, %v; want %+v", deleted, err, want)
	}
	if _, err := s.DeleteSession(ctx, want.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteSession: err = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.Session(ctx, at(time.Second), want.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Session after delete: err = %v, want %v", err, store.ErrNotFound)
	}
}

// testSessionClientsRace adds clients to one session from many callers at
// once: every client is recorded, each once.
func testSessionClientsRace(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	sess := session("cookie-1")
	sess.Clients = nil
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	errs := race(goroutines, func(i int) error {
		// Two callers per client.
		return s.AddSessionClient(t.Context(), at(time.Second), sess.ID, fmt.Sprintf("client-%02d", i/2))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	got, err := s.Session(t.Context(), at(time.Second), sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	clients := slices.Sorted(slices.Values(got.Clients))
	if len(clients) != goroutines/2 || len(slices.Compact(slices.Clone(clients))) != goroutines/2 {
		t.Errorf("clients = %v, want %d distinct clients", got.Clients, goroutines/2)
	}
}

func testUpstreamLogin(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	want := upstreamLogin("state-1")
	if err := s.CreateUpstreamLogin(ctx, want); err != nil {
		t.Fatalf("CreateUpstreamLogin: %v", err)
	}
	if _, err := s.ConsumeUpstreamLogin(ctx, want.ExpiresAt, want.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("consume at expiry: err = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.ConsumeUpstreamLogin(ctx, at(0), store.SecretID("other")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("consume unknown: err = %v, want %v", err, store.ErrNotFound)
	}
	now := at(time.Minute)
	got, err := s.ConsumeUpstreamLogin(ctx, now, want.ID)
	if err != nil {
		t.Fatalf("ConsumeUpstreamLogin: %v", err)
	}
	checkStoreTime(t, "ConsumedAt", got.ConsumedAt)
	want.ConsumedAt = now
	storeTimes(&want.CreatedAt, &want.ExpiresAt, &want.ConsumedAt)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("consumed:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := s.ConsumeUpstreamLogin(ctx, now, want.ID); !errors.Is(err, store.ErrReplay) {
		t.Errorf("second consume: err = %v, want %v", err, store.ErrReplay)
	}
}

func testUpstreamLoginRace(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	u := upstreamLogin("state-1")
	if err := s.CreateUpstreamLogin(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	errs := race(goroutines, func(int) error {
		_, err := s.ConsumeUpstreamLogin(t.Context(), at(time.Second), u.ID)
		return err
	})
	exactlyOneWins(t, errs, store.ErrReplay)
}

// testDeleteExpiredLoginState sweeps one expired and one live record of
// each type; a redeemed or consumed record goes when it expires too.
func testDeleteExpiredLoginState(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	cutoff := at(time.Hour)
	for i, exp := range []time.Time{cutoff, cutoff.Add(time.Microsecond)} {
		id := fmt.Sprint(i)
		r := pushedRequest(id)
		r.ExpiresAt = exp
		c := authorizationCode(id)
		c.ExpiresAt = exp
		se := session(id)
		se.ExpiresAt = exp
		u := upstreamLogin(id)
		u.ExpiresAt = exp
		if err := errors.Join(s.CreatePushedRequest(ctx, r), s.CreateAuthorizationCode(ctx, c), s.CreateSession(ctx, se), s.CreateUpstreamLogin(ctx, u)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemAuthorizationCode(ctx, at(0), c.ID, store.CodeRedemption{RefreshFamilyID: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpiredLoginState(ctx, cutoff)
	if err != nil || n != 4 {
		t.Fatalf("DeleteExpiredLoginState = %d, %v; want 4", n, err)
	}
	gone, live := "0", "1"
	if _, err := s.RedeemAuthorizationCode(ctx, at(0), store.SecretID(gone), store.CodeRedemption{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("swept code: err = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.DeleteSession(ctx, store.SecretID(gone)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("swept session: err = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.ConsumePushedRequest(ctx, at(0), store.SecretID(live), "client-1"); err != nil {
		t.Errorf("live pushed request: %v", err)
	}
	if _, err := s.RedeemAuthorizationCode(ctx, at(0), store.SecretID(live), store.CodeRedemption{}); !errors.Is(err, store.ErrReplay) {
		t.Errorf("live redeemed code: err = %v, want %v", err, store.ErrReplay)
	}
	if _, err := s.Session(ctx, at(0), store.SecretID(live)); err != nil {
		t.Errorf("live session: %v", err)
	}
	if _, err := s.ConsumeUpstreamLogin(ctx, at(0), store.SecretID(live)); err != nil {
		t.Errorf("live upstream login: %v", err)
	}
	if n, err := s.DeleteExpiredLoginState(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("second DeleteExpiredLoginState = %d, %v; want 0", n, err)
	}
}

func testLoginDuplicates(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	creates := []struct {
		name   string
		create func() error
	}{
		{"pushed request", func() error { return s.CreatePushedRequest(ctx, pushedRequest("x")) }},
		{"authorization code", func() error { return s.CreateAuthorizationCode(ctx, authorizationCode("x")) }},
		{"session", func() error { return s.CreateSession(ctx, session("x")) }},
		{"upstream login", func() error { return s.CreateUpstreamLogin(ctx, upstreamLogin("x")) }},
	}
	for _, c := range creates {
		t.Run(c.name, func(t *testing.T) {
			if err := c.create(); err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := c.create(); !errors.Is(err, store.ErrAlreadyExists) {
				t.Errorf("second create: err = %v, want %v", err, store.ErrAlreadyExists)
			}
		})
	}
	empty := []struct {
		name   string
		create func() error
	}{
		{"pushed request", func() error { return s.CreatePushedRequest(ctx, store.PushedRequest{ExpiresAt: at(time.Hour)}) }},
		{"authorization code", func() error {
			return s.CreateAuthorizationCode(ctx, store.AuthorizationCode{ExpiresAt: at(time.Hour)})
		}},
		{"session", func() error { return s.CreateSession(ctx, store.Session{ExpiresAt: at(time.Hour)}) }},
		{"upstream login", func() error { return s.CreateUpstreamLogin(ctx, store.UpstreamLogin{ExpiresAt: at(time.Hour)}) }},
	}
	for _, c := range empty {
		t.Run(c.name+" without ID", func(t *testing.T) {
			if err := c.create(); err == nil {
				t.Error("created a record with an empty ID")
			}
		})
	}
}
