// Command sfm is a small SFM-like API (Sentral forskrivningsmodul, audience
// e-helse:sfm.api). An EPJ calls it with a DPoP-bound token for SFM; for
// every call it exchanges that token at the STS (RFC 8693 token exchange,
// HelseID profile §4.6) for a token to Reseptformidleren, with SFM's own
// client and DPoP key, and calls examples/reseptformidleren with it. The
// exchanged token is cached per incoming token until it expires. The
// answer shows what each API saw: Reseptformidleren learns who the EPJ is
// and that SFM exchanged its token.
//
//	go run ./cmd/tillit serve --dev
//	go run ./examples/reseptformidleren --issuer http://127.0.0.1:8080 &
//	go run ./examples/sfm --issuer http://127.0.0.1:8080 --key data/demo-sfm-api.jwk &
//	go run ./cmd/tillit call --issuer http://127.0.0.1:8080 --client-id demo-sfm \
//	    --key data/demo-sfm.jwk --scope e-helse:sfm.api/sfm.api http://127.0.0.1:8082/prescriptions
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/keyfile"
	"github.com/tillit-sts/tillit/resource"
)

// The APIs' audiences and scopes, as the STS's registry names them.
const (
	audience = "e-helse:sfm.api"
	scope    = "e-helse:sfm.api/sfm.api"
	rfScope  = "e-helse:reseptformidleren/rf"
)

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "issuer URL of the STS (HelseID's, or Tillit's)")
	listen := flag.String("listen", "127.0.0.1:8082", "address to listen on")
	publicURL := flag.String("public-url", "", "the URL clients call, when a reverse proxy stands in front (DPoP proofs name it)")
	clientID := flag.String("client-id", "demo-sfm-api", "SFM's own client, which owns e-helse:sfm.api and may exchange its tokens")
	keyPath := flag.String("key", "data/demo-sfm-api.jwk", "that client's private key (a JWK with alg, or PEM)")
	rf := flag.String("reseptformidleren", "http://127.0.0.1:8083", "base URL of examples/reseptformidleren")
	flag.Parse()

	key, err := keyfile.ReadFile(*keyPath)
	if err != nil {
		log.Fatal(err)
	}
	// SFM's own client. GenerateDPoPKey binds the exchanged tokens to a
	// key that lives only in this process.
	c, err := client.New(client.Config{Issuer: *issuer, ClientID: *clientID, Key: key, GenerateDPoPKey: true})
	if err != nil {
		log.Fatal(err)
	}
	api, v, err := newAPI(*issuer, *publicURL, c, *rf, nil, time.Now)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := v.Refresh(ctx); err != nil {
		log.Printf("warning: %v", err)
	}
	cancel()
	log.Printf("SFM example API on http://%s, tokens from %s, Reseptformidleren at %s", *listen, *issuer, *rf)
	srv := &http.Server{Addr: *listen, Handler: api, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// sfm is the API: the validator for incoming tokens, SFM's own client for
// the exchange, and where Reseptformidleren is.
type sfm struct {
	client *client.Client
	rf     string
	// base sends the calls to Reseptformidleren; nil means
	// http.DefaultTransport.
	base http.RoundTripper
}

// newAPI builds the API. now is the clock incoming tokens are checked with.
func newAPI(issuer, publicURL string, c *client.Client, rf string, base http.RoundTripper, now func() time.Time) (http.Handler, *resource.Validator, error) {
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
