package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/servertest"
	"github.com/tillit-sts/tillit/resource"
)

// The defaults of Config.Leeway and Config.KeyRefreshInterval, as its
// documentation states them.
const (
	defaultLeeway             = 5 * time.Second
	defaultKeyRefreshInterval = time.Minute
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestForgeOneFault starts from a valid request (a real token from the STS,
// a fresh proof) and breaks one thing per row. The status and error code
// are checked here; the whole WWW-Authenticate header of every row, whose
// error_description is API, is pinned in testdata/forge.golden.
func TestForgeOneFault(t *testing.T) {
	h := newHarness(t)
	v := h.validator(t, nil)
	now := h.sts.Clock.Now()
	good := h.token(t, client.TokenRequest{})
	base := claimsOf(t, good)

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherProofs, err := dpop.NewSigner(other, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	// A token with a kid the STS never published, signed by a stranger.
	strangerSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: "not-a-published-kid"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}

	// with returns the valid claims changed by f, signed by the STS.
	with := func(f func(c map[string]any)) string {
		c := map[string]any{}
		for k, v := range base {
			c[k] = v
		}
		f(c)
		return h.resign(t, c)
	}
	type req struct {
		method, target string
		auth           string
		proofs         []string
	}
	// valid builds the valid request for token.
	valid := func(token string) req {
		return req{http.MethodGet, apiURL, "DPoP " + token, []string{h.proof(t, http.MethodGet, apiURL, token, now)}}
	}

	tests := []struct {
		name     string
		req      func() req
		before   func(r req) // sent once before the request, e.g. to spend its proof
		wantCode int
		wantErr  string // the error code; "" for none
		wantDesc string // the error_description, where a row pins it here too
	}{
		{name: "valid", req: func() req { return valid(good) }, wantCode: 200},
		{name: "no Authorization", req: func() req { r := valid(good); r.auth = ""; return r }, wantCode: 401},
		{name: "another scheme", req: func() req { r := valid(good); r.auth = "Basic dXNlcjpwdw=="; return r }, wantCode: 401},
		{name: "Bearer use of a DPoP token", req: func() req { r := valid(good); r.auth = "Bearer " + good; return r },
			wantCode: 401, wantErr: "invalid_token"},
		{name: "wrong audience", req: func() req { return valid(with(func(c map[string]any) { c["aud"] = "nhn:msh" })) },
			wantCode: 401, wantErr: "invalid_token"},
		{name: "audience in a list is fine", req: func() req {
			return valid(with(func(c map[string]any) { c["aud"] = []string{"nhn:msh", "nhn:deft"} }))
		}, wantCode: 200},
		{name: "expired", req: func() req {
			return valid(with(func(c map[string]any) { c["exp"] = now.Add(-defaultLeeway).Unix() }))
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "expired within the leeway", req: func() req {
			return valid(with(func(c map[string]any) { c["exp"] = now.Add(-defaultLeeway + time.Second).Unix() }))
		}, wantCode: 200},
		{name: "no exp", req: func() req { return valid(with(func(c map[string]any) { delete(c, "exp") })) },
			wantCode: 401, wantErr: "invalid_token"},
		{name: "not yet valid", req: func() req {
			return valid(with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() }))
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "wrong issuer", req: func() req {
			return valid(with(func(c map[string]any) { c["iss"] = "https://helseid-sts.nhn.no" }))
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "no client_id", req: func() req { return valid(with(func(c map[string]any) { delete(c, "client_id") })) },
			wantCode: 401, wantErr: "invalid_token"},
		{name: "bad signature", req: func() req {
			parts := strings.Split(good, ".")
			sig := []byte(parts[2])
			if sig[10] == 'A' { // another valid base64url character
				sig[10] = 'B'
			} else {
				sig[10] = 'A'
			}
			return valid(parts[0] + "." + parts[1] + "." + string(sig))
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "claims changed after signing", req: func() req {
			parts := strings.Split(good, ".")
			forged := strings.Split(with(func(c map[string]any) { c["client_id"] = "someone-else" }), ".")
			return valid(parts[0] + "." + forged[1] + "." + parts[2])
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "alg none", req: func() req {
			parts := strings.Split(good, ".")
			return valid("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + ".")
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "unknown kid", req: func() req {
			b, _ := json.Marshal(base)
			obj, err := strangerSigner.Sign(b)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := obj.CompactSerialize()
			return valid(s)
		}, wantCode: 401, wantErr: "invalid_token"},
		{name: "missing cnf", req: func() req { return valid(with(func(c map[string]any) { delete(c, "cnf") })) },
			wantCode: 401, wantErr: "invalid_token"},
		{name: "insufficient scope", req: func() req {
			return valid(with(func(c map[string]any) { c["scope"] = []string{"nhn:deft/read"} }))
		}, wantCode: 403, wantErr: "insufficient_scope"},
		{name: "scope as a space-separated string is fine", req: func() req {
			return valid(with(func(c map[string]any) { c["scope"] = "openid nhn:deft/api" }))
		}, wantCode: 200},
		{name: "two Authorization headers", req: func() req {
			r := valid(good)
			r.auth += "\x00" + r.auth // split below into two header lines
			return r
		}, wantCode: 400, wantErr: "invalid_request"},
		{name: "missing DPoP header", req: func() req { r := valid(good); r.proofs = nil; return r },
			wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "duplicate DPoP header", req: func() req {
			r := valid(good)
			r.proofs = append(r.proofs, h.proof(t, http.MethodGet, apiURL, good, now))
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "wrong ath", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodGet, apiURL, "another token", now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "proof without ath", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodGet, apiURL, "", now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "wrong htm", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodPost, apiURL, good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "wrong htu", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodGet, "https://api.example.no/other", good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "htu of another host", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodGet, "https://evil.example.no/files", good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "htu with a query is fine", req: func() req {
			r := valid(good)
			r.target = apiURL + "?page=2"
			return r
		}, wantCode: 200},
		{name: "replayed proof", req: func() req { return valid(good) }, before: func(r req) {}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "stale iat", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodGet, apiURL, good, now.Add(-dpop.DefaultWindow-time.Second))}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "iat in the future", req: func() req {
			r := valid(good)
			r.proofs = []string{h.proof(t, http.MethodGet, apiURL, good, now.Add(dpop.DefaultWindow+time.Second))}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "proof key is not cnf.jkt", req: func() req {
			r := valid(good)
			p, err := otherProofs.Proof(http.MethodGet, apiURL, dpop.ProofOptions{AccessToken: good, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			r.proofs = []string{p}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof"},
		{name: "proof is not a JWS", req: func() req { r := valid(good); r.proofs = []string{"not.a.proof"}; return r },
			wantCode: 401, wantErr: "invalid_dpop_proof"},
		// One key policy for proof keys (RSA 2048 to 4096 bits with
		// e = 65537, EC on P-256, P-384 or P-521), checked before the
		// signature: a larger key costs the API more than the request.
		{name: "proof key of 4097 bits", req: func() req {
			r := valid(good)
			r.proofs = []string{forgeProof(t, jwttest.RSAJWK(jwttest.RSAModulus(4097), 65537), good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof", wantDesc: "DPoP proof jwk is not a usable public key: RSA key of 4097 bits is longer than 4096"},
		{name: "proof key of 20000 bits", req: func() req {
			r := valid(good)
			r.proofs = []string{forgeProof(t, jwttest.RSAJWK(jwttest.RSAModulus(20000), 1<<31-1), good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof", wantDesc: "DPoP proof jwk is not a usable public key: RSA key of 20000 bits is longer than 4096"},
		{name: "proof key with exponent 3", req: func() req {
			r := valid(good)
			r.proofs = []string{forgeProof(t, jwttest.RSAJWK(jwttest.RSAModulus(2048), 3), good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof", wantDesc: "DPoP proof jwk is not a usable public key: RSA exponent 3 is not 65537"},
		{name: "proof key on P-224", req: func() req {
			r := valid(good)
			r.proofs = []string{forgeProof(t, jwttest.P224JWK(t), good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof", wantDesc: "DPoP proof jwk is not a usable public key: curve P-224"},
		// The API knows the key from cnf.jkt before it looks at the proof's
		// signature: another key, however costly, is refused unverified.
		{name: "proof key of 4096 bits is not cnf.jkt", req: func() req {
			r := valid(good)
			r.proofs = []string{forgeProof(t, jwttest.RSAJWK(jwttest.RSAModulus(4096), 65537), good, now)}
			return r
		}, wantCode: 401, wantErr: "invalid_dpop_proof", wantDesc: "DPoP proof is signed with another key than the access token is bound to (cnf.jkt)"},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			build := func() *http.Request {
				hr := newRequest(r.method, r.target, "", r.proofs...)
				for _, a := range strings.Split(r.auth, "\x00") {
					if a != "" {
						hr.Header.Add("Authorization", a)
					}
				}
				return hr
			}
			if tt.before != nil {
				if resp, _ := call(v, build()); resp.StatusCode != 200 {
					t.Fatalf("first use: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			}
			resp, claims := call(v, build())
			challenge := resp.Header.Get("WWW-Authenticate")
			fmt.Fprintf(&golden, "%s\n\t%d %s\n", tt.name, resp.StatusCode, challenge)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, challenge, tt.wantCode)
			}
			if tt.wantDesc != "" && !strings.Contains(challenge, `error_description="`+tt.wantDesc+`"`) {
				t.Errorf("challenge %s, want error_description %q", challenge, tt.wantDesc)
			}
			if resp.Header.Get("Cache-Control") != "no-store" && tt.wantCode != 200 {
				t.Error("refusal without Cache-Control: no-store")
			}
			if tt.wantCode == 200 {
				if claims == nil || claims.ClientID != "deft-client" {
					t.Fatalf("handler saw claims %+v", claims)
				}
				return
			}
			if !strings.HasPrefix(challenge, "DPoP ") || !strings.HasSuffix(challenge, `algs="`+strings.Join(jws.AlgorithmNames(jws.Algorithms), " ")+`"`) {
				t.Errorf("challenge %q is not a DPoP challenge with algs", challenge)
			}
			var body struct {
				Error string `json:"error"`
			}
			if tt.wantErr == "" {
				if strings.Contains(challenge, "error=") {
					t.Errorf("error code without credentials: %s", challenge)
				}
				return
			}
			if !strings.Contains(challenge, `error="`+tt.wantErr+`"`) {
				t.Errorf("challenge %q, want error %q", challenge, tt.wantErr)
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != tt.wantErr {
				t.Errorf("body error %q (%v), want %q", body.Error, err, tt.wantErr)
			}
		})
	}
	checkGolden(t, "forge.golden", golden.String())
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestKeyRotation: a token signed with a key the STS starts to sign with
// at once (keys rotate --now) is refused until the refresh interval has
// passed, without the validator asking the STS again; after it, the keys
// are read once and the token passes. A flood of made-up kids in between
// costs the STS nothing.
func TestKeyRotation(t *testing.T) {
	h := newHarness(t)
	v := h.validator(t, nil)
	now := h.sts.Clock.Now()
	old := h.token(t, client.TokenRequest{})
	if resp, _ := call(v, newRequest("GET", apiURL, "DPoP "+old, h.proof(t, "GET", apiURL, old, now))); resp.StatusCode != 200 {
		t.Fatalf("before rotation: %d", resp.StatusCode)
	}
	if n := h.fetches.get(jwksPath); n != 1 {
		t.Fatalf("%d JWKS reads, want 1", n)
	}

	// The fake clock stands still; a key superseded at the very instant it
	// became active counts as never having signed, so let a second pass.
	h.sts.Clock.Advance(time.Second)
	now = h.sts.Clock.Now()
	if _, err := h.sts.Srv.Keys().Rotate(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	fresh := h.token(t, client.TokenRequest{})
	if claimsOf(t, fresh)["jti"] == claimsOf(t, old)["jti"] {
		t.Fatal("same token")
	}
	resp, _ := call(v, newRequest("GET", apiURL, "DPoP "+fresh, h.proof(t, "GET", apiURL, fresh, now)))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "kid is not among") {
		t.Fatalf("new key within the interval: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A flood of tokens with unknown kids, all at once.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			call(v, newRequest("GET", apiURL, "DPoP "+fresh, h.proof(t, "GET", apiURL, fresh, now)))
		})
	}
	wg.Wait()
	if n := h.fetches.get(jwksPath); n != 1 {
		t.Fatalf("%d JWKS reads within the interval, want 1", n)
	}

	h.sts.Clock.Advance(defaultKeyRefreshInterval)
	now = h.sts.Clock.Now()
	for i := range 2 {
		resp, _ := call(v, newRequest("GET", apiURL, "DPoP "+fresh, h.proof(t, "GET", apiURL, fresh, now)))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d after the interval: %d %s", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if n := h.fetches.get(jwksPath); n != 2 {
		t.Fatalf("%d JWKS reads, want 2", n)
	}
	// The old key is still published: its tokens still pass.
	if resp, _ := call(v, newRequest("GET", apiURL, "DPoP "+old, h.proof(t, "GET", apiURL, old, now))); resp.StatusCode != 200 {
		t.Fatalf("token of the previous key: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestKeysUnavailable: when the STS cannot be reached and no keys are
// known, the API answers 503 with a clear error rather than calling the
// token invalid; once keys are known, an outage does not matter.
func TestKeysUnavailable(t *testing.T) {
	h := newHarness(t)
	now := h.sts.Clock.Now()
	tok := h.token(t, client.TokenRequest{})
	var seen []error
	var mu sync.Mutex
	onError := func(r *http.Request, err error) { mu.Lock(); seen = append(seen, err); mu.Unlock() }
	warm := h.validator(t, func(c *resource.Config) { c.OnError = onError })
	if resp, _ := call(warm, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now))); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d", resp.StatusCode)
	}
	cold := h.validator(t, func(c *resource.Config) { c.OnError = onError })
	h.sts.HTTP.Close() // the STS is down from here on

	resp, _ := call(cold, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now)))
	var body struct{ Error, ErrorDescription string }
	json.NewDecoder(resp.Body).Decode(&struct {
		E *string `json:"error"`
		D *string `json:"error_description"`
	}{&body.Error, &body.ErrorDescription})
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	if body.Error != "temporarily_unavailable" || body.ErrorDescription != "the issuer's signing keys could not be read; try again later" {
		t.Fatalf("body %+v", body)
	}
	if len(seen) != 1 || !errors.Is(seen[0], resource.ErrKeysUnavailable) || !strings.Contains(seen[0].Error(), "discovery") {
		t.Fatalf("OnError got %v", seen)
	}
	if err := cold.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh succeeded with the STS down")
	}

	resp, _ = call(warm, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now)))
	if resp.StatusCode != 200 {
		t.Fatalf("known keys during the outage: %d", resp.StatusCode)
	}
}

// TestNonces: an API with nonces asks for one, and takes the proof that
// carries it.
func TestNonces(t *testing.T) {
	h := newHarness(t)
	nonces := dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: []byte("an API nonce key of 32 bytes....")})
	v := h.validator(t, func(c *resource.Config) { c.Nonces = nonces })
	now := h.sts.Clock.Now()
	tok := h.token(t, client.TokenRequest{})

	resp, _ := call(v, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now)))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 401 || nonce == "" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `DPoP error="use_dpop_nonce"`) {
		t.Fatalf("without nonce: %d %v", resp.StatusCode, resp.Header)
	}
	p, err := h.proofs.Proof("GET", apiURL, dpop.ProofOptions{AccessToken: tok, Nonce: nonce, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = call(v, newRequest("GET", apiURL, "DPoP "+tok, p))
	if resp.StatusCode != 200 || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("with nonce: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestPublicURL: behind a proxy, htu names the public URL, not the one the
// API sees.
func TestPublicURL(t *testing.T) {
	h := newHarness(t)
	v := h.validator(t, func(c *resource.Config) { c.PublicURL = "https://gw.example.no/deft/" })
	now := h.sts.Clock.Now()
	tok := h.token(t, client.TokenRequest{})
	const inside = "http://10.0.0.7:8081/files"
	tests := []struct {
		name     string
		htu      string
		wantCode int
	}{
		{"public URL", "https://gw.example.no/deft/files", 200},
		{"the URL the API sees", inside, 401},
		{"public host without the prefix", "https://gw.example.no/files", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("GET", inside, "DPoP "+tok, h.proof(t, "GET", tt.htu, tok, now))
			r.Header.Set("X-Forwarded-Host", "gw.example.no") // never trusted
			if resp, _ := call(v, r); resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestBearerRoute: a Bearer route takes Bearer tokens and refuses DPoP-bound
// ones in either scheme.
func TestBearerRoute(t *testing.T) {
	h := newHarness(t)
	bc, err := client.New(client.Config{Issuer: h.sts.URL, ClientID: "bearer-client", Key: h.sts.Key(t, "bearer-client"), Now: h.sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := bc.Token(context.Background(), client.TokenRequest{Scopes: []string{"test:bearer/read"}, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	v := h.validator(t, func(c *resource.Config) {
		c.Audience, c.Scopes, c.InsecureBearer = "test:bearer", []string{"test:bearer/read"}, true
	})
	bound := h.resign(t, func() map[string]any {
		c := claimsOf(t, bearer.AccessToken)
		c["cnf"] = map[string]string{"jkt": h.proofs.Thumbprint()}
		return c
	}())
	now := h.sts.Clock.Now()
	tests := []struct {
		name     string
		r        *http.Request
		wantCode int
		wantErr  string
	}{
		{"Bearer token", newRequest("GET", apiURL, "Bearer "+bearer.AccessToken), 200, ""},
		{"DPoP-bound token as Bearer", newRequest("GET", apiURL, "Bearer "+bound), 401, "invalid_token"},
		{"DPoP scheme", newRequest("GET", apiURL, "DPoP "+bound, h.proof(t, "GET", apiURL, bound, now)), 401, "invalid_token"},
		{"no token", newRequest("GET", apiURL, ""), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := call(v, tt.r)
			ch := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.wantCode, ch)
			}
			if tt.wantCode != 200 && (!strings.HasPrefix(ch, "Bearer") || strings.Contains(ch, "algs=") ||
				(tt.wantErr != "") != strings.Contains(ch, `error="`+tt.wantErr+`"`)) {
				t.Fatalf("challenge %q, want Bearer with error %q", ch, tt.wantErr)
			}
		})
	}
}

// TestClaims reads the typed claims of real tokens.
func TestClaims(t *testing.T) {
	h := newHarness(t)
	now := h.sts.Clock.Now()
	v := h.validator(t, nil)
	tok := h.token(t, client.TokenRequest{Organization: client.Organization{Child: servertest.Child}})
	resp, c := call(v, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now)))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	want := resource.Organization{Parent: servertest.Customer, Child: servertest.Child, Supplier: servertest.Supplier}
	if c.ClientID != "deft-client" || c.ClientName != "DEFT client" || c.Tenancy != helseid.TenancySingle ||
		c.Organization != want || !c.HasScope("nhn:deft/api") || c.JKT != h.proofs.Thumbprint() ||
		c.Issuer != h.sts.URL || len(c.Audience) != 1 || c.Audience[0] != "nhn:deft" || c.JTI == "" ||
		c.ClientAMR != helseid.ClientAMRPrivateKeyJWT || c.Person != nil || c.Act != nil || !c.Expiry.After(now) {
		t.Fatalf("claims %+v", c)
	}

	// SFM's API-specific client claim and the journal id.
	sfm, err := client.New(client.Config{Issuer: h.sts.URL, ClientID: "sfm-client", Key: h.sts.Key(t, "sfm-client"), DPoPKey: h.dpopKey, Now: h.sts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sfm.Token(context.Background(), client.TokenRequest{Scopes: []string{"e-helse:sfm.api/sfm.api"}, SFMJournalID: servertest.SFMID})
	if err != nil {
		t.Fatal(err)
	}
	sv := h.validator(t, func(c *resource.Config) { c.Audience, c.Scopes = "e-helse:sfm.api", nil })
	_, c = call(sv, newRequest("GET", apiURL, "DPoP "+st.AccessToken, h.proof(t, "GET", apiURL, st.AccessToken, now)))
	if c == nil || c.APIClaims["e-helse:sfm.api/client/claims/sfm-id"] != servertest.SFMID || len(c.APIClaims) != 1 || c.SFMJournalID != servertest.SFMID {
		t.Fatalf("SFM claims %+v", c)
	}

	// A person and a token-exchange chain, as user login and token
	// exchange issue them (profile §5.3; docs/design.md, token exchange).
	person := claimsOf(t, tok)
	for k, v := range map[string]any{
		"sub": "tzto6gPhyTQw2bR/Wl0kgF/mTH+jdQoUBvaYSObfmlQ=", helseid.ClaimPID: "17056600574",
		helseid.ClaimHPRNumber: "431001110", helseid.ClaimSecurityLevel: "4", helseid.ClaimAssuranceLevel: "high",
		helseid.ClaimNetwork: "internett", "name": "KVART GREVLING", "given_name": "KVART", "family_name": "GREVLING",
		"idp": "testidp-oidc", "amr": []string{"pwd"}, "auth_time": now.Unix(),
		helseid.ClaimOriginalClientID: "first-client",
		"act": map[string]any{"client_id": "second-client", helseid.ClaimOrgNrParent: servertest.Supplier,
			"act": map[string]any{"client_id": "first-client", "sub": "x"}},
	} {
		person[k] = v
	}
	pt := h.resign(t, person)
	_, c = call(v, newRequest("GET", apiURL, "DPoP "+pt, h.proof(t, "GET", apiURL, pt, now)))
	if c == nil || c.Person == nil {
		t.Fatalf("no person in %+v", c)
	}
	wantP := resource.Person{PID: "17056600574", Pseudonym: "tzto6gPhyTQw2bR/Wl0kgF/mTH+jdQoUBvaYSObfmlQ=", HPRNumber: "431001110",
		SecurityLevel: "4", AssuranceLevel: "high", Network: "internett", Name: "KVART GREVLING", GivenName: "KVART",
		FamilyName: "GREVLING", IdentityProvider: "testidp-oidc", AMR: []string{"pwd"}, AuthTime: time.Unix(now.Unix(), 0)}
	if fmt.Sprint(*c.Person) != fmt.Sprint(wantP) {
		t.Fatalf("person\n got %+v\nwant %+v", *c.Person, wantP)
	}
	chain := c.Chain()
	if len(chain) != 2 || chain[0].ClientID != "second-client" || chain[0].Organization.Parent != servertest.Supplier ||
		chain[1].ClientID != "first-client" || chain[1].Subject != "x" || c.OriginalClientID != "first-client" {
		t.Fatalf("act chain %+v %+v", chain, c.Act)
	}
}

// TestClaimNames keeps the claim names the validator reads equal to those
// package helseid defines for the server.
func TestClaimNames(t *testing.T) {
	h := newHarness(t)
	tok := h.token(t, client.TokenRequest{Organization: client.Organization{Child: servertest.Child}})
	for _, name := range []string{helseid.ClaimClientName, helseid.ClaimClientTenancy, helseid.ClaimOrgNrParent,
		helseid.ClaimOrgNrChild, helseid.ClaimOrgNrSupplier, helseid.ClaimClientAMR} {
		if _, ok := claimsOf(t, tok)[name]; !ok {
			t.Errorf("the server's token has no %s", name)
		}
	}
}

// TestTokenCache: a cached token is still refused once it expires, and a
// validator without the cache checks every token in full.
func TestTokenCache(t *testing.T) {
	h := newHarness(t)
	tok := h.token(t, client.TokenRequest{})
	exp := time.Unix(int64(claimsOf(t, tok)["exp"].(float64)), 0)
	for _, size := range []int{0, 1, -1} {
		t.Run(fmt.Sprint("size ", size), func(t *testing.T) {
			clock := servertest.NewClock(h.sts.Clock.Now())
			vc := h.validator(t, func(c *resource.Config) { c.TokenCache, c.Now = size, clock.Now })
			for _, at := range []time.Time{clock.Now(), clock.Now().Add(time.Second), exp.Add(defaultLeeway - time.Second)} {
				clock.Advance(at.Sub(clock.Now()))
				if resp, _ := call(vc, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, at))); resp.StatusCode != 200 {
					t.Fatalf("at %v: %d %s", at, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			}
			clock.Advance(time.Second)
			resp, _ := call(vc, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, clock.Now())))
			if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(ch, "access token has expired") {
				t.Fatalf("after exp: %d %s", resp.StatusCode, ch)
			}
		})
	}
}

// TestRequireScopes: a route that needs a further scope answers 403 with
// the scopes it needs.
func TestRequireScopes(t *testing.T) {
	h := newHarness(t)
	v := h.validator(t, nil)
	now := h.sts.Clock.Now()
	tok := h.token(t, client.TokenRequest{})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name      string
		handler   http.Handler
		wantCode  int
		wantChall string
	}{
		{"scope held", v.Middleware(v.RequireScopes("nhn:deft/api")(ok)), 200, ""},
		{"scope missing", v.Middleware(v.RequireScopes("nhn:deft/api", "nhn:deft/write")(ok)), 403,
			`DPoP error="insufficient_scope", error_description="access token lacks scope nhn:deft/write", scope="nhn:deft/api nhn:deft/write", algs=`},
		{"outside Middleware", v.RequireScopes("nhn:deft/api")(ok), 401, `DPoP algs=`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, newRequest("GET", apiURL, "DPoP "+tok, h.proof(t, "GET", apiURL, tok, now)))
			if ch := rec.Header().Get("WWW-Authenticate"); rec.Code != tt.wantCode || !strings.HasPrefix(ch, tt.wantChall) {
				t.Fatalf("%d %q, want %d %q", rec.Code, ch, tt.wantCode, tt.wantChall)
			}
		})
	}
}
