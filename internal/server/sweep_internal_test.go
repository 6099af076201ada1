package server

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// TestSweepLoginState: the background job removes the login state that
// has expired at the server's clock and keeps the rest.
func TestSweepLoginState(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)
	ctx := t.Context()
	for _, c := range []struct {
		id  string
		exp time.Time
	}{{"expired", now}, {"live", now.Add(time.Second)}} {
		err := errors.Join(
			st.CreatePushedRequest(ctx, store.PushedRequest{ID: store.SecretID(c.id), ClientID: "c", ExpiresAt: c.exp}),
			st.CreateAuthorizationCode(ctx, store.AuthorizationCode{ID: store.SecretID(c.id), ClientID: "c", ExpiresAt: c.exp}),
			st.CreateSession(ctx, store.Session{ID: store.SecretID(c.id), ExpiresAt: c.exp}),
			st.CreateUpstreamLogin(ctx, store.UpstreamLogin{ID: store.SecretID(c.id), ExpiresAt: c.exp}),
		)
		if err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{store: st, now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.sweepLoginState(ctx); err != nil {
		t.Fatalf("sweepLoginState: %v", err)
	}
	// Only the live records are left for a sweep at the end of time.
	if n, err := st.DeleteExpiredLoginState(ctx, now.Add(time.Hour)); err != nil || n != 4 {
		t.Errorf("records left = %d, %v; want the 4 live ones", n, err)
	}
}
