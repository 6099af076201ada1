package requestid

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A client's X-Request-Id is kept apart from the request ID the server
// gives, so that it can never pass for one: logs and audit records name
// the request by the server's ID, and keep the client's next to it.
func TestMiddleware(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		wantClient string
	}{
		{name: "no header", header: "", wantClient: ""},
		{name: "a plain value", header: "from-the-proxy-1", wantClient: "from-the-proxy-1"},
		{name: "a value shaped like a server ID", header: "0123456789abcdef01234567", wantClient: "0123456789abcdef01234567"},
		{name: "odd characters", header: "evil\" injected=1", wantClient: ""},
		{name: "too long", header: string(make([]byte, 65)), wantClient: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id, client string
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id, client = From(r.Context()), ClientFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				req.Header.Set(Header, tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if len(id) != 24 || id == tt.header {
				t.Errorf("request ID %q, want a fresh one of the server's", id)
			}
			if got := rec.Header().Get(Header); got != id {
				t.Errorf("response %s %q, want the server's ID %q", Header, got, id)
			}
			if client != tt.wantClient {
				t.Errorf("client's request ID %q, want %q", client, tt.wantClient)
			}
		})
	}
}
