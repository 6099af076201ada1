package loadtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/keyfile"
)

const (
	testIssuer   = "http://127.0.0.1:8080"
	testEndpoint = testIssuer + "/connect/token"
)

// newTestWorker is a worker as Run makes it, without a server.
func newTestWorker(tb testing.TB, key *jose.JSONWebKey, bearer bool) *worker {
	tb.Helper()
	r := &runner{endpoint: testEndpoint, bodyPrefix: "grant_type=client_credentials&client_assertion="}
	r.cfg.Now = time.Now
	var err error
	if r.assertions, err = newJWSSigner(key, assertionType, false); err != nil {
		tb.Fatal(err)
	}
	if !bearer {
		if r.proofs, err = newJWSSigner(key, proofType, true); err != nil {
			tb.Fatal(err)
		}
	}
	r.claims = newClaimWriter("bench", testIssuer, testEndpoint, assertionLifetime)
	return &worker{r: r}
}

// BenchmarkNewRequest is the generator's client-side cost per token
// request: a fresh ES256 client assertion, a fresh ES256 DPoP proof and
// the request around them. BenchmarkLibraryRequest builds the same with
// client.ClientAssertion and dpop.Signer (go-jose), and
// BenchmarkSignaturesOnly is the floor: the two ECDSA signatures alone.
func BenchmarkNewRequest(b *testing.B) {
	key, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		b.Fatal(err)
	}
	w := newTestWorker(b, key, false)
	nonce := jws.NewJTI() + jws.NewJTI()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := w.newRequest(nonce); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLibraryRequest(b *testing.B) {
	key, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(client.Config{Issuer: testIssuer, ClientID: "bench", Key: key})
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := keyfile.Signer(key)
	proofs, err := dpop.NewSigner(signer, jose.ES256)
	if err != nil {
		b.Fatal(err)
	}
	nonce := jws.NewJTI() + jws.NewJTI()
	b.ReportAllocs()
	for b.Loop() {
		a, err := c.ClientAssertion()
		if err != nil {
			b.Fatal(err)
		}
		p, err := proofs.Proof("POST", testEndpoint, dpop.ProofOptions{Nonce: nonce})
		if err != nil || a == "" || p == "" {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignaturesOnly(b *testing.B) {
	key, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		b.Fatal(err)
	}
	k := key.Key.(*ecdsa.PrivateKey)
	msg := make([]byte, 300)
	b.ReportAllocs()
	for b.Loop() {
		for range 2 {
			h := sha256.Sum256(msg)
			if _, err := ecdsa.SignASN1(rand.Reader, k, h[:]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
