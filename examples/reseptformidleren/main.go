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
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/examples/reseptformidleren/rfapi"
)

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "issuer URL of the STS (HelseID's, or Tillit's)")
	listen := flag.String("listen", "127.0.0.1:8083", "address to listen on")
	publicURL := flag.String("public-url", "", "the URL clients call, when a reverse proxy stands in front (DPoP proofs name it)")
	flag.Parse()

	api, v, err := rfapi.NewAPI(*issuer, *publicURL, time.Now)
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
