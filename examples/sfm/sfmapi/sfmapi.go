// Package sfmapi is the API of examples/sfm: it takes an EPJ's token for
// e-helse:sfm.api, exchanges it for a Reseptformidleren token with SFM's own
// client, calls Reseptformidleren and answers with what both saw. It is a
// package of its own so that other examples' tests can run it in-process.
package sfmapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/resource"
)

// The APIs' audiences and scopes, as the STS's registry names them.
const (
	audience = "e-helse:sfm.api"
	scope    = "e-helse:sfm.api/sfm.api"
	rfScope  = "e-helse:reseptformidleren/rf"
)

// sfm is the API: the validator for incoming tokens, SFM's own client for
// the exchange, and where Reseptformidleren is.
type sfm struct {
	client *client.Client
	rf     string
	// base sends the calls to Reseptformidleren; nil means
	// http.DefaultTransport.
	base http.RoundTripper
}

// NewAPI builds the API. now is the clock incoming tokens are checked with.
func NewAPI(issuer, publicURL string, c *client.Client, rf string, base http.RoundTripper, now func() time.Time) (http.Handler, *resource.Validator, error) {
	v, err := resource.New(resource.Config{
		Issuer:    issuer,
		Audience:  audience,
		Scopes:    []string{scope},
		PublicURL: publicURL,
		Nonces:    resource.NewNonces(), // one instance; several share a key: resource.SharedNonces
		Now:       now,
		OnError: func(r *http.Request, err error) {
			if errors.Is(err, dpop.ErrUseNonce) {
				return
			}
			log.Printf("refused %s %s: %v", r.Method, r.URL.Path, err)
		},
	})
	if err != nil {
		return nil, nil, err
	}
	s := &sfm{client: c, rf: strings.TrimSuffix(rf, "/"), base: base}
	mux := http.NewServeMux()
	mux.Handle("GET /prescriptions", v.Middleware(http.HandlerFunc(s.prescriptions)))
	return mux, v, nil
}

// answer is what SFM answers: what it saw, and what Reseptformidleren saw.
type answer struct {
	SFMSaw               caller          `json:"sfm_saw"`
	ReseptformidlerenSaw json.RawMessage `json:"reseptformidleren_saw"`
}

type caller struct {
	ClientID     string                `json:"client_id"`
	Organization resource.Organization `json:"organization"`
	SFMID        string                `json:"sfm_id,omitempty"`
}

// prescriptions stands for any SFM operation that needs
// Reseptformidleren: exchange the caller's token, then call downstream.
func (s *sfm) prescriptions(w http.ResponseWriter, r *http.Request) {
	c, _ := resource.ClaimsFromContext(r.Context())
	// The middleware has checked the token; the exchange sends it on as
	// it came. It is bound to the EPJ's DPoP key, which SFM does not have
	// and does not need.
	subject, _ := resource.AccessTokenFromContext(r.Context())
	// The exchanged token is cached per subject token, so the EPJ's next
	// calls with this token cost no exchange; Transport adds it and a proof
	// of SFM's key, and answers Reseptformidleren's nonce request.
	ts, err := s.client.ExchangeTokenSource(client.ExchangeRequest{SubjectToken: subject, Scopes: []string{rfScope}})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	hc := &http.Client{Transport: &client.Transport{Source: ts, Base: s.base}, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.rf+"/whoami", nil)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	resp, err := hc.Do(req)
	var ce *client.Error
	switch {
	case errors.Is(err, client.ErrIssuerUnreachable):
		log.Printf("token exchange: %v", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the STS could not be reached"})
		return
	case errors.As(err, &ce):
		// The STS refused: SFM may not act for this caller.
		log.Printf("token exchange refused for client %s: %v", c.ClientID, err)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "token exchange refused: " + ce.Description})
		return
	case err != nil:
		log.Printf("Reseptformidleren: %v", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "Reseptformidleren could not be reached"})
		return
	}
	defer resp.Body.Close()
	if err := client.ResponseError(resp); err != nil {
		// Reseptformidleren refused SFM's token: SFM's fault, not the EPJ's.
		log.Printf("Reseptformidleren: %v", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "Reseptformidleren refused SFM's token"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK || !json.Valid(body) {
		log.Printf("Reseptformidleren answered %d: %s", resp.StatusCode, body)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": fmt.Sprintf("Reseptformidleren answered %d", resp.StatusCode)})
		return
	}
	writeJSON(w, http.StatusOK, answer{
		SFMSaw:               caller{ClientID: c.ClientID, Organization: c.Organization, SFMID: c.APIClaims["e-helse:sfm.api/client/claims/sfm-id"]},
		ReseptformidlerenSaw: body,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
