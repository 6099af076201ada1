package server

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
)

// middleware gives every request an ID and a deadline (http.request_timeout,
// below the write timeout: a store that does not answer by then gets the
// client a 503 while the connection can still carry it), and turns a panic
// into a bare server_error whose cause is logged under that ID.
func (s *Server) middleware(next http.Handler) http.Handler {
	return requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := s.requestTimeout; d > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			r = r.WithContext(ctx)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "request_id", requestid.From(r.Context()), "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				oauth.WriteError(w, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	}))
}
