package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
	"github.com/tillit-sts/tillit/internal/servertest"
)

// call is one token request, valid unless a test changes it.
type call struct {
	client    string
	assertion func(h, c map[string]any) // changes the client assertion
	proof     func(h, c map[string]any) // changes the DPoP proof
	form      func(url.Values)          // changes the form
	header    func(http.Header)
	noDPoP    bool
	// dpopKey signs the proof; nil means a fresh P-256 key.
	dpopKey crypto.Signer
	// rawAssertion / rawProof replace the built ones when set.
	rawAssertion string
	rawProof     string
	method       string
	body         string // replaces the encoded form when set
}

type result struct {
	status int
	body   map[string]any
	header http.Header
	// sent keeps what was sent, for replay tests.
	assertion, proof string
}

func (r result) code() string {
	s, _ := r.body["error"].(string)
	return s
}

func (r result) description() string {
	s, _ := r.body["error_description"].(string)
	return s
}

type harness struct {
	*servertest.Server
	t testing.TB
}

func start(t testing.TB, opts ...servertest.Options) *harness {
	var o servertest.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return &harness{Server: servertest.Start(t, o), t: t}
}

func (h *harness) tokenURL() string { return h.URL + "/connect/token" }

func (h *harness) nonce() string { return h.Srv.Keys().Nonces().Issue(h.Clock.Now()) }

// assertion builds a client assertion signed with the client's key.
func (h *harness) assertion(clientID string, mutate func(h, c map[string]any)) string {
	t := h.t
	t.Helper()
	key := h.Key(t, clientID)
	now := h.Clock.Now()
	hdr := map[string]any{"alg": key.Algorithm, "kid": key.KeyID, "typ": "client-authentication+jwt"}
	claims := map[string]any{
		"iss": clientID, "sub": clientID, "aud": h.URL, "jti": jws.NewJTI(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix(),
	}
	if mutate != nil {
		mutate(hdr, claims)
	}
	return jwttest.JWT{Header: hdr, Claims: claims, Key: key.Key.(crypto.Signer)}.Sign(t)
}

// proof builds a DPoP proof for the token endpoint with a current nonce.
func (h *harness) proof(key crypto.Signer, mutate func(h, c map[string]any)) string {
	t := h.t
	t.Helper()
	alg, err := jws.DefaultAlgorithm(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"typ": "dpop+jwt", "alg": string(alg), "jwk": jose.JSONWebKey{Key: key.Public()}}
	claims := map[string]any{"jti": jws.NewJTI(), "htm": "POST", "htu": h.tokenURL(), "iat": h.Clock.Now().Unix(), "nonce": h.nonce()}
	if mutate != nil {
		mutate(hdr, claims)
	}
	return jwttest.JWT{Header: hdr, Claims: claims, Key: key}.Sign(t)
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (h *harness) do(c call) result {
	t := h.t
	t.Helper()
	if c.client == "" {
		c.client = "deft-client"
	}
	r := result{assertion: c.rawAssertion, proof: c.rawProof}
	if r.assertion == "" {
		r.assertion = h.assertion(c.client, c.assertion)
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {c.client},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {r.assertion},
	}
	if c.form != nil {
		c.form(form)
	}
	body := form.Encode()
	if c.body != "" {
		body = c.body
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, h.tokenURL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !c.noDPoP {
		if r.proof == "" {
			key := c.dpopKey
			if key == nil {
				key = newP256(t)
			}
			r.proof = h.proof(key, c.proof)
		}
		req.Header.Set("DPoP", r.proof)
	}
	if c.header != nil {
		c.header(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r.status, r.header = resp.StatusCode, resp.Header
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	h.checkSettled(t)
	return r
}

// checkSettled fails t when a request answered so far left the decision it
// announced to the store (store.Store.ExpectDecision) unsettled: one left
// over would hold every later commit open for the commit delay.
func (h *harness) checkSettled(t testing.TB) {
	t.Helper()
	if st, ok := h.Store.(interface{ ExpectedWrites() int64 }); ok {
		if n := st.ExpectedWrites(); n != 0 {
			t.Fatalf("%d announced commits are unsettled after the answers", n)
		}
	}
}

// claims decodes the payload of a JWT without checking it (tests check the
// signature separately).
func claims(t testing.TB, jwt string) map[string]any { return jwttest.Claims(t, jwt) }

// forgeAssertion signs a valid-looking assertion for clientID with a key
// that is not registered, under a registered kid.
func forgeAssertion(t testing.TB, h *harness, key crypto.Signer, clientID, kid string) string {
	now := h.Clock.Now()
	return jwttest.JWT{
		Header: map[string]any{"alg": "ES256", "kid": kid},
		Claims: map[string]any{"iss": clientID, "sub": clientID, "aud": h.URL, "jti": jws.NewJTI(), "exp": now.Add(30 * time.Second).Unix()},
		Key:    key,
	}.Sign(t)
}

func stdB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func bigInt(b []byte) *big.Int { return new(big.Int).SetBytes(b) }

// proofPublicKey reads the jwk header of a proof.
func proofPublicKey(t testing.TB, proof string) *ecdsa.PublicKey {
	t.Helper()
	head, _, _ := strings.Cut(proof, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		JWK jose.JSONWebKey `json:"jwk"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.JWK.Key.(*ecdsa.PublicKey)
}
