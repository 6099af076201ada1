package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/internal/store"
)

// benchGoroutines send requests, whatever GOMAXPROCS is: enough that the
// store's group commit has company, as it has under real load. The
// docs/performance.md figures use the default; -goroutines shows how the
// rate moves with the load.
var benchGoroutines = flag.Int("goroutines", 32, "concurrent requests in the token endpoint benchmarks")

// benchCommitDelay overrides commit_delay (config.DefaultCommitDelay when
// empty), to show what the delay buys: -commit-delay 0s turns it off.
var benchCommitDelay = flag.String("commit-delay", "", "commit_delay for the token endpoint benchmarks (default: the config default)")

// benchSettings are the server settings of the endpoint benchmarks.
func benchSettings() string {
	s := "log: {level: warn}"
	if *benchCommitDelay != "" {
		s += "\ncommit_delay: " + *benchCommitDelay
	}
	return s
}

// benchParallelism is RunParallel's multiplier for benchGoroutines
// (rounded up: 33 goroutines on 3 Ps).
func benchParallelism() int {
	p := runtime.GOMAXPROCS(0)
	return max(1, (*benchGoroutines+p-1)/p)
}

// serveProcs sets GOMAXPROCS as serve does for SQLite (server.Procs) for
// the rest of the benchmark.
func serveProcs(b *testing.B) {
	def := runtime.GOMAXPROCS(server.Procs("tillit.db", runtime.GOMAXPROCS(0), runtime.GOMAXPROCS(0)))
	b.Cleanup(func() { runtime.GOMAXPROCS(def) })
}

// BenchmarkTokenEndpoint measures the whole token endpoint in-process: the
// real handler with its middleware, SQLite as serve configures it
// (synchronous=FULL, replay writes included, one P more than the cores),
// an ES256 client assertion and an ES256 DPoP proof per request, and a
// token signed with RS256 or ES256. The client-side signing happens
// before the timer starts.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			serveProcs(b)
			h := start(b, servertest.Options{Algorithm: alg, Settings: benchSettings()})
			handler := h.Srv.Handler()
			bodies, proofs := prebuild(b, h, b.N)
			var next atomic.Int64
			b.SetParallelism(benchParallelism())
			cpu0 := settle()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					req := httptest.NewRequest(http.MethodPost, h.tokenURL(), strings.NewReader(bodies[i]))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("DPoP", proofs[i])
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkTokenExchange measures token exchange next to
// BenchmarkTokenEndpoint, on the same footing: SFM's client exchanges an
// EPJ's DPoP-bound SFM token for a Reseptformidleren token, with an ES256
// assertion and proof per request signed before the timer starts. On top of
// a client_credentials request it verifies the subject token (one signature
// check with the service's own key) and builds the exchanged claims.
func BenchmarkTokenExchange(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			serveProcs(b)
			h := start(b, servertest.Options{Algorithm: alg, Settings: benchSettings()})
			subject := h.token(call{client: "sfm-client"})
			key := newP256(b)
			bodies, proofs := make([]string, b.N), make([]string, b.N)
			for i := range b.N {
				form := url.Values{
					"client_id":             {"sfm-actor"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {h.assertion("sfm-actor", nil)},
				}
				exchange(subject, servertest.RFScope)(form)
				bodies[i] = form.Encode()
				proofs[i] = h.proof(key, nil)
			}
			runEndpoint(b, h, func(int) string { return "" }, bodies, proofs, nil)
		})
	}
}

// BenchmarkRefresh measures the refresh grant: each request spends a
// refresh token and gets the next of its family (a store read, the jti
// write and the rotation, each durable). Every goroutine keeps one family
// and sends the refresh token the previous answer gave it, so the loop also
// decodes each answer's refresh_token, a few microseconds of client work.
// Assertions and proofs are signed before the timer starts.
func BenchmarkRefresh(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			serveProcs(b)
			h := start(b, servertest.Options{Algorithm: alg, Settings: benchSettings()})
			key := newP256(b)
			jkt := thumbprint(b, key)
			families := make([]string, benchParallelism()*runtime.GOMAXPROCS(0))
			for i := range families {
				families[i] = h.RefreshToken(b, "refresh-client", jkt, login)
			}
			bodies, proofs := make([]string, b.N), make([]string, b.N)
			for i := range b.N {
				bodies[i] = url.Values{
					"grant_type": {"refresh_token"}, "resource": {"nhn:deft"}, "client_id": {"refresh-client"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {h.assertion("refresh-client", nil)},
				}.Encode() + "&refresh_token="
				proofs[i] = h.proof(key, nil)
			}
			var family atomic.Int64
			runEndpoint(b, h, func(int) string {
				// One family per goroutine: called once as each starts.
				return families[family.Add(1)-1]
			}, bodies, proofs, func(rec *httptest.ResponseRecorder) string {
				var resp struct {
					RefreshToken string `json:"refresh_token"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.RefreshToken == "" {
					b.Fatalf("no refresh_token in %s", rec.Body)
				}
				return resp.RefreshToken
			})
		})
	}
}

// BenchmarkCodeRedemption measures the authorization_code grant next to
// BenchmarkTokenEndpoint: each request redeems a code stored as the
// authorization endpoint stores it (bound to the proof's key, with openid,
// profile, the person's scopes, offline_access and an API scope) and gets
// an access token, an ID token and a refresh token. On top of a
// client_credentials request it spends the code, signs a second token and
// stores a refresh token family. The codes, assertions and proofs are made
// before the timer starts.
func BenchmarkCodeRedemption(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			serveProcs(b)
			h := start(b, servertest.Options{Algorithm: alg, Registry: loginRegistry, Settings: "environment: test\n" + benchSettings()})
			key := newP256(b)
			jkt := thumbprint(b, key)
			scopes := []string{"openid", "profile", scopePID, scopeLevel, scopeHPR, "offline_access", scopeSFM}
			bodies, proofs := make([]string, b.N), make([]string, b.N)
			for i := range b.N {
				code, verifier := h.loginCode(testLogin(loginPID), scopes, func(c *store.AuthorizationCode) { c.JKT = jkt })
				form := url.Values{
					"client_id":             {"web"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {h.assertion("web", nil)},
				}
				redeemForm(code, verifier)(form)
				bodies[i] = form.Encode()
				proofs[i] = h.proof(key, nil)
			}
			runEndpoint(b, h, func(int) string { return "" }, bodies, proofs, nil)
		})
	}
}

// runEndpoint sends the prebuilt requests to the token endpoint in
// parallel, as BenchmarkTokenEndpoint does. Each goroutine starts with
// state(i) appended to its bodies and, when next is set, replaces it with
// next(answer) after every request.
func runEndpoint(b *testing.B, h *harness, state func(int) string, bodies, proofs []string, next func(*httptest.ResponseRecorder) string) {
	handler := h.Srv.Handler()
	var idx atomic.Int64
	b.SetParallelism(benchParallelism())
	cpu0 := settle()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		suffix := state(0)
		for pb.Next() {
			i := idx.Add(1) - 1
			req := httptest.NewRequest(http.MethodPost, h.tokenURL(), strings.NewReader(bodies[i]+suffix))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("DPoP", proofs[i])
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if next != nil {
				suffix = next(rec)
			}
		}
	})
	b.StopTimer()
	reportCPU(b, cpu0)
}

// BenchmarkCryptoOnly measures, on the same inputs and with the same
// algorithms, only the cryptography a token costs: verify the assertion's
// signature, verify the proof's signature, sign the token. It is the
// ceiling BenchmarkTokenEndpoint is compared with.
func BenchmarkCryptoOnly(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			h := start(b, servertest.Options{Algorithm: alg})
			bodies, proofs := prebuild(b, h, 64)
			assertionKey := h.Key(b, "deft-client").Key.(*ecdsa.PrivateKey)
			type input struct {
				aDigest, aSig, pDigest, pSig []byte
				// The proof key's coordinates: a verifier makes a key of
				// them for every proof, and so does this benchmark.
				proofX, proofY []byte
			}
			inputs := make([]input, len(bodies))
			for i := range bodies {
				form, _ := url.ParseQuery(bodies[i])
				ad, as := splitJWS(b, form.Get("client_assertion"))
				pd, ps := splitJWS(b, proofs[i])
				pk := proofPublicKey(b, proofs[i])
				inputs[i] = input{ad, as, pd, ps, pk.X.Bytes(), pk.Y.Bytes()}
			}
			// A token-sized payload, signed with a key of the configured type.
			payload := sha256.Sum256([]byte(strings.Repeat("x", 700)))
			var signer crypto.Signer
			var opts crypto.SignerOpts = crypto.SHA256
			if alg == "RS256" {
				signer, _ = rsa.GenerateKey(rand.Reader, 2048)
			} else {
				signer = assertionKey
			}
			var next atomic.Int64
			b.SetParallelism(benchParallelism())
			cpu0 := settle()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					in := inputs[next.Add(1)%int64(len(inputs))]
					proofKey := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(in.proofX), Y: new(big.Int).SetBytes(in.proofY)}
					if !verifyES256(&assertionKey.PublicKey, in.aDigest, in.aSig) || !verifyES256(proofKey, in.pDigest, in.pSig) {
						b.Fatal("signature did not verify")
					}
					if _, err := signer.Sign(rand.Reader, payload[:], opts); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpu0)
		})
	}
}

// prebuild signs n token requests (assertion and proof) for deft-client.
func prebuild(b *testing.B, h *harness, n int) (bodies, proofs []string) {
	b.Helper()
	key := newP256(b)
	bodies, proofs = make([]string, n), make([]string, n)
	for i := 0; i < n; i++ {
		bodies[i] = url.Values{
			"grant_type": {"client_credentials"}, "scope": {"nhn:deft/api"}, "client_id": {"deft-client"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {h.assertion("deft-client", nil)},
		}.Encode()
		proofs[i] = h.proof(key, nil)
	}
	return bodies, proofs
}

func splitJWS(b *testing.B, jws string) (digest, sig []byte) {
	i := strings.LastIndexByte(jws, '.')
	d := sha256.Sum256([]byte(jws[:i]))
	s, err := base64.RawURLEncoding.DecodeString(jws[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	return d[:], s
}

func verifyES256(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecdsa.Verify(pub, digest, bigInt(sig[:32]), bigInt(sig[32:]))
}

var _ = jwttest.Segment

// settle collects the garbage the set-up made (signing b.N requests makes
// plenty), so that the timed loop does not pay for it, and returns the CPU
// time so far.
func settle() time.Duration {
	runtime.GC()
	return cpuTime()
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds tokens/s and the CPU time per token, so that a run where
// the machine was busy elsewhere can be told apart from a slow one.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/token")
}
