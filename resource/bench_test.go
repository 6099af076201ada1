package resource_test

// Benchmarks of API-side validation next to the cryptography it cannot
// avoid, in the same run and on the same inputs: a real RS256 token from the
// STS and real proofs.
//
//	go test ./resource -run '^$' -bench . -benchtime 3000x -count 5
//
// cpu-ns/op is the process's CPU time (getrusage, user + system) per
// operation while the timed loop ran: on a shared machine it moves less
// with other processes' load than ns/op does.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/keyfile"
	"github.com/tillit-sts/tillit/resource"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs body in b.RunParallel and reports CPU time per operation.
// It first collects the garbage the set-up made (signing b.N proofs makes
// plenty), so that the timed loop does not pay for it.
func parallel(b *testing.B, body func(pb *testing.PB)) {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	start := cpuTime()
	b.RunParallel(body)
	cpu := cpuTime() - start
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

type benchSetup struct {
	h       *harness
	v       *resource.Validator
	token   string
	proofs  *dpop.Signer
	issuer  *rsa.PublicKey
	now     time.Time
	proofFn func(n int) []string
}

// setupBench gets a DPoP-bound token from the real STS for a proof key of
// alg, and a validator with a replay cache big enough for the run.
func setupBench(b *testing.B, alg jose.SignatureAlgorithm) *benchSetup {
	b.Helper()
	h := newHarness(b)
	dk, err := keyfile.Generate(alg, 0)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(client.Config{Issuer: h.sts.URL, ClientID: "deft-client", Key: h.sts.Key(b, "deft-client"), DPoPKey: dk, Now: h.sts.Clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := c.Token(context.Background(), client.TokenRequest{Scopes: []string{"nhn:deft/api"}})
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := keyfile.Signer(dk)
	proofs, err := dpop.NewSigner(signer, alg)
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSetup{h: h, token: tok.AccessToken, proofs: proofs, now: h.sts.Clock.Now()}
	s.v = h.validator(b, func(c *resource.Config) { c.Replay = resource.NewMemoryReplayCache(1 << 22) })
	// Read the keys before timing; take the issuer key for the baseline.
	if err := s.v.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	resp, err := http.Get(h.sts.URL + jwksPath)
	if err != nil {
		b.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	jws, _ := jose.ParseSignedCompact(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	s.issuer = set.Key(jws.Signatures[0].Protected.KeyID)[0].Key.(*rsa.PublicKey)
	return s
}

// makeProofs signs n distinct proofs before the timer starts: a proof can
// be used once, and signing is the client's cost, not the API's.
func (s *benchSetup) makeProofs(b *testing.B, n int) []string {
	out := make([]string, n)
	for i := range out {
		p, err := s.proofs.Proof(http.MethodGet, apiURL, dpop.ProofOptions{AccessToken: s.token, Now: s.now})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// BenchmarkValidate is the whole middleware per request: proof signature
// and checks, thumbprint, replay cache, claims in the context, and the
// token. "cold" checks the token's signature and claims on every request
// (the token cache is off), "warm" finds the token in the cache, as
// happens to every request after a client's first with a token.
func BenchmarkValidate(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.PS256} {
		for _, mode := range []string{"cold", "warm"} {
			b.Run("token=RS256/proof="+string(alg)+"/"+mode, func(b *testing.B) {
				s := setupBench(b, alg)
				v := s.v
				if mode == "cold" {
					v = s.h.validator(b, func(c *resource.Config) {
						c.Replay, c.TokenCache = resource.NewMemoryReplayCache(1<<22), -1
					})
				}
				proofs := s.makeProofs(b, b.N)
				auth := "DPoP " + s.token
				handler := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
				var next atomic.Int64
				parallel(b, func(pb *testing.PB) {
					// One request per goroutine, as a server reuses its
					// buffers: building requests is not the validator's cost.
					r := httptest.NewRequest(http.MethodGet, apiURL, nil)
					r.Header.Set("Authorization", auth)
					w := &discard{h: http.Header{}}
					for pb.Next() {
						r.Header.Set("DPoP", proofs[next.Add(1)-1])
						w.code = 0
						handler.ServeHTTP(w, r)
						if w.code != 0 {
							b.Fatalf("status %d: %s", w.code, w.h.Get("WWW-Authenticate"))
						}
					}
				})
			})
		}
	}
}

// discard is a ResponseWriter that keeps only the status.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkSignaturesOnly is the floor: the two signature verifications a
// request needs, with nothing else. The token's signature is checked with
// the issuer's RSA key; the proof's with a key made from the proof's jwk
// coordinates each time, since an API meets a new proof key with every
// client and that decoding is part of the cryptography's cost.
func BenchmarkSignaturesOnly(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.PS256} {
		b.Run("token=RS256/proof="+string(alg), func(b *testing.B) {
			s := setupBench(b, alg)
			proof := s.makeProofs(b, 1)[0]
			tokIn, tokSig := splitJWS(b, s.token)
			proofIn, proofSig := splitJWS(b, proof)
			var hdr struct {
				JWK struct{ N, E, X, Y string } `json:"jwk"`
			}
			head, _, _ := strings.Cut(proof, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(head)
			json.Unmarshal(raw, &hdr)
			parallel(b, func(pb *testing.PB) {
				for pb.Next() {
					th := sha256.Sum256(tokIn)
					if err := rsa.VerifyPKCS1v15(s.issuer, crypto.SHA256, th[:], tokSig); err != nil {
						b.Fatal(err)
					}
					ph := sha256.Sum256(proofIn)
					if alg == jose.ES256 {
						x, _ := base64.RawURLEncoding.DecodeString(hdr.JWK.X)
						y, _ := base64.RawURLEncoding.DecodeString(hdr.JWK.Y)
						pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
						if err != nil {
							b.Fatal(err)
						}
						r, s := new(big.Int).SetBytes(proofSig[:32]), new(big.Int).SetBytes(proofSig[32:])
						if !ecdsa.Verify(pub, ph[:], r, s) {
							b.Fatal("proof signature")
						}
						continue
					}
					n, _ := base64.RawURLEncoding.DecodeString(hdr.JWK.N)
					e, _ := base64.RawURLEncoding.DecodeString(hdr.JWK.E)
					pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
					if err := rsa.VerifyPSS(pub, crypto.SHA256, ph[:], proofSig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func splitJWS(b *testing.B, s string) (input, sig []byte) {
	i := strings.LastIndexByte(s, '.')
	sig, err := base64.RawURLEncoding.DecodeString(s[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	return []byte(s[:i]), sig
}
