package page

import (
	"net/http"
	"strings"
	"testing"
)

// discard is a ResponseWriter that keeps nothing but the headers, which
// it clears for the next page, so the benchmark counts Render alone.
type discard struct {
	h     http.Header
	bytes int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(int)     {}
func (d *discard) Write(b []byte) (int, error) {
	d.bytes += len(b)
	return len(b), nil
}

// BenchmarkRender measures rendering each login page as the handlers
// render it: the template in Norwegian, the security headers with a
// client's origin as form target, and a form with a CSRF token and a
// 700-character stand-in for the sealed login transaction.
func BenchmarkRender(b *testing.B) {
	f := Form{
		Action: "/login/testidp",
		CSRF:   strings.Repeat("c", 86),
		Hidden: []Field{{Name: "tx", Value: strings.Repeat("t", 700)}},
	}
	pages := []struct {
		name string
		page Page
	}{
		{"idp", &ChooseIDP{Form: f, ClientName: "Journal", Providers: []Provider{{"testidp-oidc", "TestIDP"}, {"idporten", "ID-porten"}}}},
		{"testidp", &TestIDP{Form: f, SecurityLevel: "4"}},
		{"testidp-errors", &TestIDP{Form: f, PID: "1", SecurityLevel: "5", Errors: []FieldError{
			{FieldPID, MsgPIDFormat}, {FieldSecurityLevel, MsgLevelInvalid},
		}}},
		{"logout", &Logout{Form: f, ClientName: "Journal"}},
		{"loggedout", &LoggedOut{}},
		{"error", &Error{Kind: ErrorRequest, Detail: "redirect_uri is not registered", Reference: "0123456789abcdef"}},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				if err := Render(w, http.StatusOK, Norwegian, p.page, "https://client.example"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.bytes)/float64(b.N), "bytes/page")
		})
	}
}
