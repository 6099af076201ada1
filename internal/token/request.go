package token

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/tillit-sts/tillit/internal/oauth"
)

// Request is a token request after the form has been parsed once. Grants
// read their parameters from it.
type Request struct {
	GrantType           string
	ClientID            string
	ClientAssertionType string
	ClientAssertion     string
	Scope               string
	// Resources are the resource parameters (RFC 8707); the only parameter
	// that may be repeated.
	Resources []string
	// Form holds every parameter, for grant-specific ones.
	Form url.Values
	// DPoP is the DPoP header, empty when there is none.
	DPoP string
	// Authorization holds the Authorization headers, a second
	// authentication method unless authenticate finds them harmless.
	Authorization []string
}

// parseRequest reads and checks the transport of a request to the token
// endpoint, or to another endpoint (named in errors) that takes a form and
// private_key_jwt: method, content type, body size, form syntax, repeated
// parameters, DPoP header count. A request that fails here spends nothing.
func parseRequest(w http.ResponseWriter, r *http.Request, maxBody int64, endpoint string) (*Request, error) {
	if r.Method != http.MethodPost {
		return nil, oauth.InvalidRequest("the " + endpoint + " endpoint accepts POST only").WithStatus(http.StatusMethodNotAllowed)
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, oauth.InvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, oauth.InvalidRequest("parameters must be sent in the request body, not in the URL")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, oauth.Newf(oauth.CodeInvalidRequest, "request body exceeds %d bytes", maxBody).WithStatus(http.StatusRequestEntityTooLarge)
		}
		return nil, oauth.InvalidRequest("request body could not be read").Wrap(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauth.InvalidRequest("request body is not a valid form").Wrap(err)
	}
	for name, values := range form {
		// RFC 6749 §3.2: request parameters must not be included more
		// than once. resource may be (RFC 8707 §2); the grant decides.
		if len(values) > 1 && name != "resource" {
			return nil, oauth.Newf(oauth.CodeInvalidRequest, "parameter %s is given more than once", name)
		}
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) > 1 {
		return nil, oauth.InvalidDPoPProof("exactly one DPoP header is allowed")
	}
	req := &Request{
		GrantType:           form.Get("grant_type"),
		ClientID:            form.Get("client_id"),
		ClientAssertionType: form.Get("client_assertion_type"),
		ClientAssertion:     form.Get("client_assertion"),
		Scope:               form.Get("scope"),
		Resources:           form["resource"],
		Form:                form,
		Authorization:       r.Header.Values("Authorization"),
	}
	if len(proofs) == 1 {
		req.DPoP = strings.TrimSpace(proofs[0])
		if req.DPoP == "" {
			return nil, oauth.InvalidDPoPProof("DPoP header is empty")
		}
	}
	return req, nil
}
