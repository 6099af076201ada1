package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// errorBody is the JSON shape of an error response (RFC 6749 §5.2).
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// WriteError renders err as an OAuth JSON error response. An error that is not
// an *Error becomes a bare server_error: its text stays in the logs (the
// caller logs it under the request ID), never in the response. It reports the
// *Error that was written so the caller can log and count it.
func WriteError(w http.ResponseWriter, err error) *Error {
	e := As(err)
	if e == nil {
		e = &Error{Code: CodeServerError, cause: err}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.DPoPNonce != "" {
		h.Set("DPoP-Nonce", e.DPoPNonce)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	body := errorBody{Error: e.Code, Description: e.Description}
	if e.Code == CodeServerError {
		// Never describe internal failures to the client.
		body.Description = ""
	}
	w.WriteHeader(e.HTTPStatus())
	_ = json.NewEncoder(w).Encode(body)
	return e
}

// WriteJSON writes a successful JSON response that must not be cached
// (RFC 6749 §5.1).
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
