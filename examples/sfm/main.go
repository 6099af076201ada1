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
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/examples/sfm/sfmapi"
	"github.com/tillit-sts/tillit/keyfile"
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
	api, v, err := sfmapi.NewAPI(*issuer, *publicURL, c, *rf, nil, time.Now)
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
