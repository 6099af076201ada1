package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A panic becomes a bare server_error; its cause goes to the log under the
// request ID and never to the client.
func TestPanicBecomesServerError(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	h := s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("secret internal detail")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/connect/token", nil))
	if rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["error"] != "server_error" || body["error_description"] != nil {
		t.Fatalf("body %v", body)
	}
	if strings.Contains(rec.Body.String(), "secret") {
		t.Fatal("the panic text reached the client")
	}
	id := rec.Header().Get("X-Request-Id")
	if !strings.Contains(logs.String(), id) || !strings.Contains(logs.String(), "secret internal detail") {
		t.Fatalf("log does not hold the cause under the request id %q:\n%s", id, logs.String())
	}
}
