package loadtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/keyfile"
)

// TestSignedRequest checks the generator's hand-made assertions and proofs
// with the verifiers the server uses and with plain go-jose, for every
// algorithm a HelseID client key may have.
func TestSignedRequest(t *testing.T) {
	now := time.Now()
	nonces := dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: []byte("0123456789abcdef0123456789abcdef")})
	nonce := nonces.Issue(now)
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.PS256, jose.PS512} {
		t.Run(string(alg), func(t *testing.T) {
			key, err := keyfile.Generate(alg, 0)
			if err != nil {
				t.Fatal(err)
			}
			w := newTestWorker(t, key, false)
			w.r.cfg.Now = func() time.Time { return now }
			// Twice: the second request reuses the worker's buffers.
			var jtis []string
			for range 2 {
				form, proof, err := w.newRequest(nonce)
				if err != nil {
					t.Fatal(err)
				}
				v, err := url.ParseQuery(form)
				if err != nil {
					t.Fatal(err)
				}
				a := checkAssertion(t, key, v.Get("client_assertion"), now)
				p := checkProof(t, key, proof, nonces, now)
				jtis = append(jtis, a, p)
			}
			seen := map[string]bool{}
			for _, j := range jtis {
				if seen[j] {
					t.Fatalf("jti %q used twice", j)
				}
				seen[j] = true
			}
		})
	}
}

// checkAssertion verifies a client assertion as Tillit does and returns its
// jti.
func checkAssertion(t *testing.T, key *jose.JSONWebKey, assertion string, now time.Time) string {
	t.Helper()
	v := &clientauth.Verifier{
		Algorithms:  jws.Algorithms,
		Audiences:   []string{testIssuer},
		MaxLifetime: 60 * time.Second,
		ClockSkew:   10 * time.Second,
	}
	a, err := v.Parse(assertion)
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if err := v.Verify(a, []jose.JSONWebKey{*keyfile.Public(key)}, now); err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if a.ClientID != "bench" {
		t.Errorf("assertion client %q", a.ClientID)
	}
	// The header and claims, read with go-jose, are the client package's.
	jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(key.Algorithm)})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if h.KeyID != key.KeyID || h.ExtraHeaders[jose.HeaderType] != "client-authentication+jwt" || h.JSONWebKey != nil {
		t.Errorf("assertion header %+v", h)
	}
	payload, err := jws.Verify(keyfile.Public(key))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Iss, Sub, Aud, JTI string
		Iat, Nbf, Exp      int64
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Iss != "bench" || c.Sub != "bench" || c.Aud != testIssuer || c.Iat != now.Unix() || c.Nbf != c.Iat || c.Exp != c.Iat+10 || len(c.JTI) < 22 {
		t.Errorf("assertion claims %s", payload)
	}
	return c.JTI
}

// checkProof verifies a DPoP proof as Tillit does and returns its jti.
func checkProof(t *testing.T, key *jose.JSONWebKey, proof string, nonces *dpop.Nonces, now time.Time) string {
	t.Helper()
	v := &dpop.Verifier{Nonces: nonces}
	p, err := v.Verify(proof, dpop.Request{Method: http.MethodPost, URL: testEndpoint, Now: now})
	if err != nil {
		t.Fatalf("proof: %v", err)
	}
	jkt, err := jws.Thumbprint(keyfile.Public(key))
	if err != nil {
		t.Fatal(err)
	}
	if p.Thumbprint != jkt || p.URL != testEndpoint || p.Algorithm != jose.SignatureAlgorithm(key.Algorithm) {
		t.Errorf("proof %+v", p)
	}
	tok, err := jws.Parse(proof, jws.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(tok.Header.JWK, &members); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"kid", "alg", "use"} {
		if _, ok := members[m]; ok {
			t.Errorf("proof jwk carries %q, more than the public key: %s", m, tok.Header.JWK)
		}
	}
	return p.JTI
}

func TestProofNonce(t *testing.T) {
	c := newClaimWriter("c", testIssuer, testEndpoint, 10*time.Second)
	tests := []struct {
		name  string
		nonce string
		want  string
	}{
		{name: "none", nonce: "", want: `"iat":1700000000}`},
		{name: "NQCHAR", nonce: "AbC-_.~!#$%&'()*+,/:;<=>?@[]^`{|}", want: `"nonce":"AbC-_.~!#$%&'()*+,/:;<=>?@[]^` + "`{|}\"}"},
		{name: "quote and backslash are escaped", nonce: `a"b\c`, want: `"nonce":"a\"b\\c"}`},
		{name: "control character is escaped", nonce: "a\nb", want: `"nonce":"a\nb"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := c.proof(nil, time.Unix(1700000000, 0), tt.nonce)
			if !strings.HasSuffix(string(b), tt.want) {
				t.Fatalf("claims %s, want suffix %s", b, tt.want)
			}
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("claims %s: %v", b, err)
			}
			if got, _ := v["nonce"].(string); got != tt.nonce {
				t.Fatalf("nonce %q, want %q", got, tt.nonce)
			}
		})
	}
}

func TestJWSSignerRefuses(t *testing.T) {
	es, err := keyfile.Generate(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	noAlg := *es
	noAlg.Algorithm = ""
	wrongAlg := *es
	wrongAlg.Algorithm = string(jose.ES384)
	tests := []struct {
		name    string
		key     *jose.JSONWebKey
		wantErr string
	}{
		{name: "public key", key: keyfile.Public(es), wantErr: "keyfile: not a private RSA or EC key"},
		{name: "no alg", key: &noAlg, wantErr: "loadtest: key has no alg"},
		{name: "alg of another curve", key: &wrongAlg, wantErr: "loadtest: key: alg ES384 needs curve P-384, key is on P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newJWSSigner(tt.key, assertionType, false)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
