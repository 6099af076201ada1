// Package requestid gives every HTTP request an ID that appears in each log
// line about it, in its audit record and in the X-Request-Id response
// header, so that a client's report of a server_error can be matched to the
// logged cause. The ID is always the server's own; an X-Request-Id the
// client (or a proxy) sent is kept apart (ClientFrom), so that it can never
// pass for one the server issued.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Header is the response (and accepted request) header.
const Header = "X-Request-Id"

type (
	key       struct{}
	clientKey struct{}
)

// New returns a fresh 96-bit random ID.
func New() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the ID in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// ClientFrom returns the X-Request-Id the client sent, when it was short
// and plain, or "".
func ClientFrom(ctx context.Context) string {
	id, _ := ctx.Value(clientKey{}).(string)
	return id
}

// Middleware gives each request a fresh ID of the server's, sent back in
// X-Request-Id. An incoming X-Request-Id is kept, apart, when it is short
// and plain (a proxy's, to find the request by); anything else is dropped,
// so a client cannot inject text into the logs or the audit log.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := New()
		ctx := With(r.Context(), id)
		if client := r.Header.Get(Header); plain(client) {
			ctx = context.WithValue(ctx, clientKey{}, client)
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func plain(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
