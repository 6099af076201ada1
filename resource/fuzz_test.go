package resource

import (
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzParseClaims feeds the claims parser payloads a signer could have
// signed: it must refuse or accept, never panic, and what it accepts must
// hold together.
func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(`{"iss":"https://sts","aud":"nhn:deft","exp":1800000000,"scope":["nhn:deft/api"],"client_id":"c","cnf":{"jkt":"x"}}`))
	f.Add([]byte(`{"aud":["a","b"],"scope":"a b","act":{"client_id":"x","act":{"client_id":"y"}},"e-helse:sfm.api/client/claims/sfm-id":"id"}`))
	f.Add([]byte(`{"helseid://claims/client/claims/orgnr_parent":"1","x/client/claims/y":{"n":1},"exp":1e300}`))
	f.Add([]byte(`{"sub":"s","auth_time":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, _, err := parseClaims(payload)
		if err != nil {
			return
		}
		if c == nil {
			t.Fatal("no claims and no error")
		}
		if len(c.Chain()) > maxActDepth {
			t.Fatalf("act chain of %d", len(c.Chain()))
		}
	})
}

// FuzzCredentials feeds Authorization and DPoP headers to a validator whose
// issuer cannot be reached: every request must be refused with an *Error,
// never accepted and never a panic.
func FuzzCredentials(f *testing.F) {
	f.Add("DPoP eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.")
	f.Add("Bearer x", "")
	f.Add("DPoP ", "a.b.c")
	f.Add("dpop a.b.c", "a.b.c")
	v, err := New(Config{Issuer: "http://127.0.0.1:1", Audience: "nhn:deft", Now: func() time.Time { return time.Unix(1_800_000_000, 0) },
		KeyRefreshInterval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, auth, proof string) {
		r := httptest.NewRequest("GET", "https://api.example.no/x", nil)
		r.Header["Authorization"] = []string{auth}
		r.Header["Dpop"] = []string{proof}
		c, err := v.Validate(r)
		if err == nil || c != nil {
			t.Fatalf("accepted %q", auth)
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T", err)
		}
	})
}
