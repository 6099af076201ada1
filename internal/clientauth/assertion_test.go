package clientauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/jwttest"
)

const (
	issuer   = "https://sts.example.com"
	tokenURL = issuer + "/connect/token"
	clientID = "client-1"
)

var now = time.Unix(1_800_000_000, 0)

func newVerifier() *Verifier {
	return &Verifier{
		Algorithms:  jws.Algorithms,
		Audiences:   []string{issuer, issuer + "/", tokenURL},
		MaxLifetime: 60 * time.Second,
		ClockSkew:   10 * time.Second,
	}
}

type forged struct {
	header map[string]any
	claims map[string]any
	key    crypto.Signer
	alg    string
	sig    string
	// trailer is appended to the claims' JSON, inside the signed payload.
	trailer string
	// leader is put first inside the claims' object, before the claims.
	leader string
}

func (f forged) String(t *testing.T) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	payload := enc(f.claims)
	if f.trailer != "" || f.leader != "" {
		b, _ := json.Marshal(f.claims)
		b = append([]byte("{"+f.leader), b[1:]...)
		payload = base64.RawURLEncoding.EncodeToString(append(b, f.trailer...))
	}
	input := enc(f.header) + "." + payload
	if f.sig != "" {
		return input + "." + f.sig
	}
	h := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch f.alg {
	case "none":
		return input + "."
	case "HS256":
		pub, _ := json.Marshal(jose.JSONWebKey{Key: f.key.Public()})
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case "ES256":
		k := f.key.(*ecdsa.PrivateKey)
		r, s, e := ecdsa.Sign(rand.Reader, k, h[:])
		err = e
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.key.(*rsa.PrivateKey), crypto.SHA256, h[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, f.key.(*rsa.PrivateKey), crypto.SHA256, h[:], nil)
	default:
		t.Fatalf("alg %s", f.alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyForgeOneFault(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	// psKey is registered for PS256 only (RFC 7517 §4.4): a PKCS #1 v1.5
	// signature by it must not count.
	psKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	registered := []jose.JSONWebKey{
		{Key: ecKey.Public(), KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		{Key: rsaKey.Public(), KeyID: "rsa-1", Use: "sig"},
		{Key: psKey.Public(), KeyID: "rsa-ps", Algorithm: "PS256", Use: "sig"},
		// Keys outside the key policy, registered before it applied or
		// by a registry that did not check: never used to verify.
		{Key: &rsa.PublicKey{N: jwttest.RSAModulus(4097), E: 65537}, KeyID: "rsa-4097", Use: "sig"},
		{Key: &rsa.PublicKey{N: rsaKey.N, E: 3}, KeyID: "rsa-e3", Use: "sig"},
	}
	valid := func() forged {
		return forged{
			header: map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "client-authentication+jwt"},
			claims: map[string]any{
				"iss": clientID, "sub": clientID, "aud": issuer, "jti": "jti-1",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(30 * time.Second).Unix(),
			},
			key: ecKey, alg: "ES256",
		}
	}
	tests := []struct {
		name       string
		mutate     func(f *forged)
		restricted []jose.SignatureAlgorithm
		wantErr    error
		want       string
	}{
		{"valid", func(f *forged) {}, nil, nil, ""},
		{"typ JWT", func(f *forged) { f.header["typ"] = "JWT" }, nil, nil, ""},
		{"no typ", func(f *forged) { delete(f.header, "typ") }, nil, nil, ""},
		{"no kid tries every key", func(f *forged) { delete(f.header, "kid") }, nil, nil, ""},
		{"RSA key without kid", func(f *forged) { delete(f.header, "kid"); f.key, f.alg, f.header["alg"] = rsaKey, "RS256", "RS256" }, nil, nil, ""},
		{"PS256 with RSA key", func(f *forged) { f.header["kid"] = "rsa-1"; f.key, f.alg, f.header["alg"] = rsaKey, "PS256", "PS256" }, nil, nil, ""},
		{"PS256 with a key pinned to PS256", func(f *forged) { f.header["kid"] = "rsa-ps"; f.key, f.alg, f.header["alg"] = psKey, "PS256", "PS256" }, nil, nil, ""},
		{"iat as numeric string", func(f *forged) { f.claims["iat"] = "1800000000" }, nil, nil, ""},
		{"no iat", func(f *forged) { delete(f.claims, "iat") }, nil, nil, ""},
		{"aud token endpoint", func(f *forged) { f.claims["aud"] = tokenURL }, nil, nil, ""},
		{"aud issuer with slash", func(f *forged) { f.claims["aud"] = issuer + "/" }, nil, nil, ""},
		{"aud as array", func(f *forged) { f.claims["aud"] = []string{issuer, tokenURL} }, nil, nil, ""},
		{"exp 60 s ahead", func(f *forged) { f.claims["exp"] = now.Add(60 * time.Second).Unix() }, nil, nil, ""},

		{"alg none", func(f *forged) { f.alg, f.header["alg"] = "none", "none" }, nil, ErrInvalid, "alg \"none\" is not allowed"},
		{"claims followed by more JSON", func(f *forged) { f.trailer = `{"sub":"other"}` }, nil, ErrInvalid, "claims are not a JSON object"},
		// encoding/json would take the last sub, another tool the first.
		{"sub given twice", func(f *forged) { f.leader = `"sub":"client-2",` }, nil, ErrInvalid, "claims are not a JSON object"},
		{"aud given twice", func(f *forged) { f.leader = `"aud":"https://other.example.com",` }, nil, ErrInvalid, "claims are not a JSON object"},
		{"jti not a string", func(f *forged) { f.claims["jti"] = 7 }, nil, ErrInvalid, "claims are not a JSON object"},
		{"aud array with a number", func(f *forged) { f.claims["aud"] = []any{issuer, 7} }, nil, ErrInvalid, "aud is neither"},
		{"exp null", func(f *forged) { f.claims["exp"] = nil }, nil, ErrInvalid, "exp is not a number"},
		{"HS256 keyed with the public key", func(f *forged) { f.alg, f.header["alg"] = "HS256", "HS256" }, nil, ErrInvalid, "alg \"HS256\" is not allowed"},
		{"RS256 switched off", func(f *forged) { f.header["kid"] = "rsa-1"; f.key, f.alg, f.header["alg"] = rsaKey, "RS256", "RS256" },
			[]jose.SignatureAlgorithm{jose.ES256, jose.PS256}, ErrInvalid, "not allowed"},
		{"unknown kid", func(f *forged) { f.header["kid"] = "nope" }, nil, ErrInvalid, "no registered key"},
		{"registered RSA key of 4097 bits", func(f *forged) {
			f.header["kid"], f.alg, f.header["alg"], f.sig = "rsa-4097", "RS256", "RS256", b64(make([]byte, 513))
		}, nil, ErrInvalid, `no registered key of the client has kid "rsa-4097" and fits alg RS256`},
		{"registered RSA key with exponent 3", func(f *forged) {
			f.header["kid"], f.alg, f.header["alg"], f.sig = "rsa-e3", "RS256", "RS256", b64(make([]byte, 256))
		}, nil, ErrInvalid, `no registered key of the client has kid "rsa-e3" and fits alg RS256`},
		{"signed by an unregistered key", func(f *forged) { f.key = stranger }, nil, ErrInvalid, "signature is invalid"},
		{"signed by an unregistered key, no kid", func(f *forged) { f.key = stranger; delete(f.header, "kid") }, nil, ErrInvalid, "signature is invalid"},
		{"bad signature", func(f *forged) { f.sig = base64.RawURLEncoding.EncodeToString(make([]byte, 64)) }, nil, ErrInvalid, "signature is invalid"},
		{"RS256 by a key pinned to PS256", func(f *forged) { f.header["kid"] = "rsa-ps"; f.key, f.alg, f.header["alg"] = psKey, "RS256", "RS256" }, nil, ErrInvalid, "no registered key"},
		{"RS256 by a key pinned to PS256, no kid", func(f *forged) { delete(f.header, "kid"); f.key, f.alg, f.header["alg"] = psKey, "RS256", "RS256" }, nil, ErrInvalid, "signature is invalid"},
		{"kid of a key with another alg", func(f *forged) { f.header["kid"] = "rsa-1" }, nil, ErrInvalid, "no registered key"},
		{"header jwk is not trusted", func(f *forged) {
			f.key = stranger
			delete(f.header, "kid")
			f.header["jwk"] = jose.JSONWebKey{Key: stranger.Public()}
		}, nil, ErrInvalid, "signature is invalid"},
		{"typ dpop+jwt", func(f *forged) { f.header["typ"] = "dpop+jwt" }, nil, ErrInvalid, "typ"},
		{"expired", func(f *forged) { f.claims["exp"] = now.Add(-11 * time.Second).Unix() }, nil, ErrInvalid, "expired"},
		{"no exp", func(f *forged) { delete(f.claims, "exp") }, nil, ErrInvalid, "no exp"},
		{"exp as string", func(f *forged) { f.claims["exp"] = "1800000030" }, nil, ErrInvalid, "exp is not a number"},
		{"lifetime over 60 s by exp", func(f *forged) { delete(f.claims, "iat"); f.claims["exp"] = now.Add(120 * time.Second).Unix() }, nil, ErrInvalid, "lifetime exceeds 60"},
		{"lifetime over 60 s by iat", func(f *forged) {
			f.claims["iat"] = now.Add(-10 * time.Second).Unix()
			f.claims["exp"] = now.Add(55 * time.Second).Unix()
		}, nil, ErrInvalid, "lifetime exceeds 60"},
		{"iat in the future", func(f *forged) { f.claims["iat"] = now.Add(20 * time.Second).Unix() }, nil, ErrInvalid, "iat is in the future"},
		{"iat not a number", func(f *forged) { f.claims["iat"] = "yesterday" }, nil, ErrInvalid, "iat is not a number"},
		{"nbf in the future", func(f *forged) { f.claims["nbf"] = now.Add(20 * time.Second).Unix() }, nil, ErrInvalid, "nbf"},
		{"wrong aud", func(f *forged) { f.claims["aud"] = "https://other.example.com" }, nil, ErrInvalid, "aud"},
		{"aud array with a foreign value", func(f *forged) { f.claims["aud"] = []string{issuer, "https://other.example.com"} }, nil, ErrInvalid, "aud"},
		{"no aud", func(f *forged) { delete(f.claims, "aud") }, nil, ErrInvalid, "no aud"},
		{"wrong iss", func(f *forged) { f.claims["iss"] = "client-2" }, nil, ErrInvalid, "iss must equal sub"},
		{"no sub", func(f *forged) { delete(f.claims, "sub") }, nil, ErrInvalid, "no sub"},
		{"no jti", func(f *forged) { delete(f.claims, "jti") }, nil, ErrInvalid, "no jti"},
		{"empty jti", func(f *forged) { f.claims["jti"] = "" }, nil, ErrInvalid, "no jti"},
		{"jti too long", func(f *forged) { f.claims["jti"] = strings.Repeat("x", 300) }, nil, ErrInvalid, "jti is too long"},
		{"both details claims", func(f *forged) {
			f.claims["assertion_details"] = map[string]any{"type": "x"}
			f.claims["authorization_details"] = map[string]any{"type": "x"}
		}, nil, ErrBothDetails, "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := valid()
			tt.mutate(&f)
			v := newVerifier()
			if tt.restricted != nil {
				v.Algorithms = tt.restricted
			}
			a, err := v.Parse(f.String(t))
			if err == nil {
				if a.ClientID != clientID && tt.wantErr == nil {
					t.Fatalf("client id %q", a.ClientID)
				}
				err = v.Verify(a, registered, now)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if a.JTI != "jti-1" || a.Key == nil {
					t.Fatalf("jti %q key %v", a.JTI, a.Key)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestReplayUntilCoversAcceptance: the jti of an assertion is remembered
// for as long as Verify accepts the assertion (exp plus the clock skew),
// so that no instant exists where it passes and is forgotten.
func TestReplayUntilCoversAcceptance(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := []jose.JSONWebKey{{Key: key.Public(), KeyID: "k"}}
	exp := now.Add(30 * time.Second)
	f := forged{
		header: map[string]any{"alg": "ES256", "kid": "k"},
		claims: map[string]any{"iss": clientID, "sub": clientID, "aud": issuer, "jti": "j", "exp": exp.Unix()},
		key:    key, alg: "ES256",
	}
	v := newVerifier()
	a, err := v.Parse(f.String(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(a, keys, now); err != nil {
		t.Fatal(err)
	}
	until := v.ReplayUntil(a)
	if want := exp.Add(v.ClockSkew); !until.Equal(want) {
		t.Fatalf("ReplayUntil = %v, want exp + skew = %v", until, want)
	}
	// The last instant Verify accepts is before until; at until it refuses.
	if err := v.Verify(a, keys, until.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("just before ReplayUntil: %v", err)
	}
	if err := v.Verify(a, keys, until); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at ReplayUntil: %v, want expired", err)
	}
}

func TestDetailsClaims(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := []jose.JSONWebKey{{Key: key.Public(), KeyID: "k"}}
	for _, name := range []string{"assertion_details", "authorization_details"} {
		t.Run(name, func(t *testing.T) {
			f := forged{
				header: map[string]any{"alg": "ES256", "kid": "k"},
				claims: map[string]any{"iss": clientID, "sub": clientID, "aud": issuer, "jti": "j", "exp": now.Add(10 * time.Second).Unix(),
					name: []any{map[string]any{"type": "helseid_authorization"}}},
				key: key, alg: "ES256",
			}
			v := newVerifier()
			a, err := v.Parse(f.String(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(a, keys, now); err != nil {
				t.Fatal(err)
			}
			if a.DetailsClaim != name || !strings.Contains(string(a.Details), "helseid_authorization") {
				t.Fatalf("details %q from %q", a.Details, a.DetailsClaim)
			}
		})
	}
}

func TestParseBounds(t *testing.T) {
	v := newVerifier()
	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", "missing"},
		{"too large", strings.Repeat("a", MaxAssertionSize+1), "too large"},
		{"not a JWS", "abc", "not a compact JWS"},
		{"bad header", "!!.e30.AA", "header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Parse(tt.in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIiwiaXNzIjoiYSJ9.AA")
	f.Add("a.b.c")
	v := newVerifier()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := []jose.JSONWebKey{{Key: key.Public()}}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := v.Parse(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error outside the taxonomy: %v", err)
			}
			return
		}
		if err := v.Verify(a, keys, now); err == nil {
			t.Fatal("a fuzzed assertion verified against a fresh key")
		}
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
