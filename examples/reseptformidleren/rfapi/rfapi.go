// Package rfapi is the API of examples/reseptformidleren, a stand-in for
// Reseptformidleren: it takes exchanged tokens for e-helse:reseptformidleren
// and answers with what they say about the callers. It is a package of its
// own so that other examples' tests can run it in-process.
package rfapi

import (
	"encoding/json"
	"errors"
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

// NewAPI builds the API. now is the clock the tokens are checked with.
func NewAPI(issuer, publicURL string, now func() time.Time) (http.Handler, *resource.Validator, error) {
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
