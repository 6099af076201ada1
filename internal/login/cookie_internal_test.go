package login

import (
	"net/http/httptest"
	"testing"
)

// The cookie is Secure, and __Host- prefixed, unless the issuer is plain
// http on a loopback address.
func TestCookieSecurity(t *testing.T) {
	tests := []struct {
		name, issuer string
		wantCookie   string
	}{
		{name: "https", issuer: "https://sts.example", wantCookie: "__Host-tillit-session=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{name: "https on loopback", issuer: "https://127.0.0.1:8443", wantCookie: "__Host-tillit-session=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{name: "http on 127.0.0.1", issuer: "http://127.0.0.1:8080", wantCookie: "tillit-session=v; Path=/; HttpOnly; SameSite=Lax"},
		{name: "http on localhost", issuer: "http://localhost:8080", wantCookie: "tillit-session=v; Path=/; HttpOnly; SameSite=Lax"},
		{name: "http on ::1", issuer: "http://[::1]:8080", wantCookie: "tillit-session=v; Path=/; HttpOnly; SameSite=Lax"},
		{name: "http elsewhere", issuer: "http://sts.example", wantCookie: "__Host-tillit-session=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{name: "http on a name that starts like loopback", issuer: "http://127.0.0.1.evil.example", wantCookie: "__Host-tillit-session=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secure := !plainLoopback(tt.issuer)
			l := &Login{secure: secure, cookie: cookieName(secure)}
			rec := httptest.NewRecorder()
			l.setCookie(rec, "v", false)
			if got := rec.Header().Get("Set-Cookie"); got != tt.wantCookie {
				t.Fatalf("Set-Cookie %q, want %q", got, tt.wantCookie)
			}
			rec = httptest.NewRecorder()
			l.setCookie(rec, "v", true)
			if got := rec.Header().Get("Set-Cookie"); got != l.cookie+"=; Path=/; Max-Age=0; HttpOnly; "+map[bool]string{true: "Secure; ", false: ""}[secure]+"SameSite=Lax" {
				t.Fatalf("clearing: Set-Cookie %q", got)
			}
		})
	}
}
