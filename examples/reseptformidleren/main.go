// Command reseptformidleren is a small stand-in for Reseptformidleren, the
// API SFM calls downstream: it takes DPoP-bound access tokens for the
// audience e-helse:reseptformidleren, which SFM gets by token exchange
// (RFC 8693, HelseID profile §4.6), and answers with what such a token
// tells it: the client that called SFM in the first place, its
// organisation and sfm-id, and the chain of clients that exchanged the
// token on the way. See examples/sfm for the whole path.
//
//	go run ./cmd/tillit serve --dev
//	go run ./examples/reseptformidleren --issuer http://127.0.0.1:8080
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/resource"
)

// The API's audience and scope, as the STS's registry names them.
const (
	audience = "e-helse:reseptformidleren"
	scope    = "e-helse:reseptformidleren/rf"
	// sfmIDClaim is SFM's API-specific client claim. It reaches this API
	// only because the registry lists it among the claims this API
	// accepts from subject tokens (subject_claims).
	sfmIDClaim = "e-helse:sfm.api/client/claims/sfm-id"
)

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "issuer URL of the STS (HelseID's, or Tillit's)")
	listen := flag.String("listen", "127.0.0.1:8083", "address to listen on")
	publicURL := flag.String("public-url", "", "the URL clients call, when a reverse proxy stands in front (DPoP proofs name it)")
	flag.Parse()

	api, v, err := newAPI(*issuer, *publicURL, time.Now)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := v.Refresh(ctx); err != nil {
		log.Printf("warning: %v", err)
	}
	cancel()
	log.Printf("Reseptformidleren example API on http://%s, tokens from %s", *listen, *issuer)
	srv := &http.Server{Addr: *listen, Handler: api, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// newAPI builds the API. now is the clock the tokens are checked with.
func newAPI(issuer, publicURL string, now func() time.Time) (http.Handler, *resource.Validator, error) {
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
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", v.Middleware(http.HandlerFunc(whoami)))
	return mux, v, nil
}

// Seen is what the API tells about a call: the exchanged token's view of
// who is behind it.
type Seen struct {
	// ClientID is the client that called this API: the one that exchanged
	// the token (SFM's own client).
	ClientID string `json:"client_id"`
	// OriginalClientID is the client the first token was issued to (the
	// EPJ), and ClientName and Organization are that client's, carried
	// over from its token.
	OriginalClientID string                `json:"original_client_id,omitempty"`
	ClientName       string                `json:"client_name,omitempty"`
	Organization     resource.Organization `json:"organization"`
	SFMID            string                `json:"sfm_id,omitempty"`
	SFMJournalID     string                `json:"sfm_journal_id,omitempty"`
	// Actors are the clients that exchanged the token, the most recent
	// first.
	Actors []Actor   `json:"actors,omitempty"`
	Scopes []string  `json:"scopes"`
	Person *personID `json:"person,omitempty"`
}

// Actor is one client of the act chain and the organisation it acted for.
type Actor struct {
	ClientID     string                `json:"client_id"`
	Organization resource.Organization `json:"organization"`
}

// personID is the user behind a token from a user login, by pseudonym
// and HPR number (a public register's number, which names the doctor on a
// prescription); the pid is never echoed.
type personID struct {
	Pseudonym string `json:"sub"`
	HPRNumber string `json:"hpr_number,omitempty"`
}

func whoami(w http.ResponseWriter, r *http.Request) {
	c, _ := resource.ClaimsFromContext(r.Context())
	s := Seen{
		ClientID: c.ClientID, OriginalClientID: c.OriginalClientID, ClientName: c.ClientName,
		Organization: c.Organization, SFMID: c.APIClaims[sfmIDClaim], SFMJournalID: c.SFMJournalID, Scopes: c.Scopes,
	}
	for _, a := range c.Chain() {
		s.Actors = append(s.Actors, Actor{ClientID: a.ClientID, Organization: a.Organization})
	}
	if c.Person != nil {
		s.Person = &personID{Pseudonym: c.Person.Pseudonym, HPRNumber: c.Person.HPRNumber}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s)
}
