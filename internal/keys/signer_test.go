package keys

import (
	"context"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Access tokens and ID tokens come from the same key but differ in typ, so
// an API that checks typ never takes an ID token for an access token.
func TestSignerTyp(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m, err := NewManager(context.Background(), openStore(t), newSealer(t), Config{}, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := mustSigner(t, m)
	set := m.JWKS()
	tests := []struct {
		name    string
		sign    func([]byte) (string, error)
		wantTyp string
	}{
		{"access token", s.Sign, "at+jwt"},
		{"ID token", s.SignIDToken, "JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.sign([]byte(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			h := obj.Signatures[0].Header
			if h.ExtraHeaders[jose.HeaderType] != tt.wantTyp || h.KeyID != s.KeyID() {
				t.Fatalf("header typ %v kid %q, want typ %q kid %q", h.ExtraHeaders[jose.HeaderType], h.KeyID, tt.wantTyp, s.KeyID())
			}
			if _, err := obj.Verify(set.Key(s.KeyID())[0].Public()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
