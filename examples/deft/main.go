// Command deft is a small DEFT-like REST API protected by HelseID, or by
// Tillit: it takes DPoP-bound access tokens for the audience nhn:deft with
// the scope nhn:deft/api and answers who is calling, for which
// organisation. It is the example to copy for an API of your own: the
// resource package does all the checking, the handlers only read the
// claims.
//
//	go run ./cmd/tillit serve --dev
//	go run ./examples/deft --issuer http://127.0.0.1:8080
//	go run ./cmd/tillit call --issuer http://127.0.0.1:8080 --client-id demo-deft \
//	    --key data/demo-deft.jwk http://127.0.0.1:8081/whoami
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
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/resource"
)

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "issuer URL of the STS (HelseID's, or Tillit's)")
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	publicURL := flag.String("public-url", "", "the URL clients call, when a reverse proxy stands in front (DPoP proofs name it)")
	flag.Parse()

	api, v, err := newAPI(*issuer, *publicURL, time.Now)
	if err != nil {
		log.Fatal(err)
	}
	// Reading the STS's keys now shows a wrong issuer at once; requests
	// would read them anyway, so a failure here is only a warning.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := v.Refresh(ctx); err != nil {
		log.Printf("warning: %v", err)
	}
	cancel()
	log.Printf("DEFT example API on http://%s, tokens from %s", *listen, *issuer)
	srv := &http.Server{Addr: *listen, Handler: api, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// newAPI builds the API. now is the clock the tokens are checked with.
func newAPI(issuer, publicURL string, now func() time.Time) (http.Handler, *resource.Validator, error) {
	// DPoP nonces (RFC 9449 §9) limit how long a stolen proof is worth
	// anything. One instance keeps its nonce key in memory; several
	// instances would share one.
	v, err := resource.New(resource.Config{
		Issuer:    issuer,
		Audience:  "nhn:deft",
		Scopes:    []string{"nhn:deft/api"},
		PublicURL: publicURL,
		Nonces:    resource.NewNonces(), // one instance; several share a key: resource.SharedNonces
		Now:       now,
		OnError: func(r *http.Request, err error) {
			if errors.Is(err, dpop.ErrUseNonce) {
				return // the nonce round trip every new client makes
			}
			log.Printf("refused %s %s: %v", r.Method, r.URL.Path, err)
		},
	})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", v.Middleware(http.HandlerFunc(whoami)))
	mux.Handle("POST /files", v.Middleware(http.HandlerFunc(upload)))
	return mux, v, nil
}

// caller is what the API tells about who called it.
type caller struct {
	ClientID     string                `json:"client_id"`
	ClientName   string                `json:"client_name,omitempty"`
	Tenancy      string                `json:"tenancy,omitempty"`
	Organization resource.Organization `json:"organization"`
	Scopes       []string              `json:"scopes"`
	// Person is left out for machine tokens. The pid is never echoed.
	Person *person `json:"person,omitempty"`
}

type person struct {
	Pseudonym     string `json:"sub"`
	HPRNumber     string `json:"hpr_number,omitempty"`
	SecurityLevel string `json:"security_level,omitempty"`
}

func callerOf(r *http.Request) caller {
	c, _ := resource.ClaimsFromContext(r.Context()) // the middleware put them there
	out := caller{ClientID: c.ClientID, ClientName: c.ClientName, Tenancy: c.Tenancy, Organization: c.Organization, Scopes: c.Scopes}
	if p := c.Person; p != nil {
		out.Person = &person{Pseudonym: p.Pseudonym, HPRNumber: p.HPRNumber, SecurityLevel: p.SecurityLevel}
	}
	return out
}

// whoami answers who is calling and for which organisation.
func whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, callerOf(r))
}

// maxFileSize bounds an upload.
const maxFileSize = 10 << 20

// upload takes a file for the calling organisation. This example counts
// the bytes; DEFT would store them for the addressee.
func upload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxFileSize))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("a file may have at most %d bytes", maxFileSize)})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"received_bytes": n, "from": callerOf(r)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
