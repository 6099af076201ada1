package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jwttest"
)

var (
	ec256, _  = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _  = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec521, _  = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa2k, _  = rsa.GenerateKey(rand.Reader, 2048)
	rsaWeak   = mustRSA(1024)
	allowList = []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512,
	}
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// goJose signs with go-jose: what real clients send.
func goJose(t testing.TB, alg jose.SignatureAlgorithm, key any, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		alg  jose.SignatureAlgorithm
		priv crypto.Signer
	}{
		{jose.ES256, ec256}, {jose.ES384, ec384}, {jose.ES512, ec521},
		{jose.RS256, rsa2k}, {jose.RS384, rsa2k}, {jose.RS512, rsa2k},
		{jose.PS256, rsa2k}, {jose.PS384, rsa2k}, {jose.PS512, rsa2k},
	} {
		t.Run(string(tt.alg), func(t *testing.T) {
			tok := goJose(t, tt.alg, tt.priv, `{"sub":"x"}`)
			j, err := Parse(tok, allowList)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Verify(tt.priv.Public()); err != nil {
				t.Fatal(err)
			}
			if string(j.Payload) != `{"sub":"x"}` || j.Header.Typ != "JWT" || j.Algorithm() != tt.alg {
				t.Fatalf("payload %s header %+v", j.Payload, j.Header)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	valid := goJose(t, jose.ES256, ec256, `{"a":1}`)
	parts := strings.Split(valid, ".")
	seg := func(v any) string { return jwttest.Segment(t, v) }
	forge := func(h map[string]any, key crypto.Signer) string {
		return jwttest.JWT{Header: h, Claims: map[string]any{"a": 1}, Key: key}.Sign(t)
	}
	tests := []struct {
		name    string
		token   string
		key     crypto.PublicKey
		algs    []jose.SignatureAlgorithm
		wantErr error
	}{
		{"two parts", parts[0] + "." + parts[1], &ec256.PublicKey, nil, ErrMalformed},
		{"four parts", valid + ".x", &ec256.PublicKey, nil, ErrMalformed},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrMalformed},
		{"standard base64 alphabet", parts[0] + "." + parts[1] + "." + parts[2][:10] + "+" + parts[2][11:], &ec256.PublicKey, nil, ErrMalformed},
		{"non-canonical last character", parts[0] + "." + parts[1] + "." + nonCanonical(parts[2]), &ec256.PublicKey, nil, ErrMalformed},
		{"header not an object", seg([]string{"ES256"}) + "." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrMalformed},
		{"header not JSON", b64([]byte("{alg")) + "." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrMalformed},
		{"line break in the signature", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\r\n" + parts[2][10:], &ec256.PublicKey, nil, ErrMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", &ec256.PublicKey, nil, ErrMalformed},
		{"alg given twice", b64([]byte(`{"alg":"ES256","alg":"ES256"}`)) + "." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrMalformed},
		{"typ not a string", b64([]byte(`{"alg":"ES256","typ":1}`)) + "." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrMalformed},
		{"ALG in capitals is not alg", b64([]byte(`{"ALG":"ES256"}`)) + "." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrAlgorithm},
		{"header with data after it", b64([]byte(`{"alg":"ES256"}{}`)) + "." + parts[1] + "." + parts[2], &ec256.PublicKey, nil, ErrMalformed},
		{"crit", forge(map[string]any{"alg": "ES256", "crit": []string{"b64"}, "b64": false}, ec256), &ec256.PublicKey, nil, ErrMalformed},
		{"alg none", forge(map[string]any{"alg": "none"}, ec256), &ec256.PublicKey, nil, ErrAlgorithm},
		{"HS256 keyed with the public key", forge(map[string]any{"alg": "HS256"}, ec256), &ec256.PublicKey, nil, ErrAlgorithm},
		{"alg outside the allow-list", valid, &ec256.PublicKey, []jose.SignatureAlgorithm{jose.PS256}, ErrAlgorithm},
		{"no alg", forge(map[string]any{"alg": ""}, ec256), &ec256.PublicKey, nil, ErrAlgorithm},
		{"wrong key", valid, &ec384.PublicKey, nil, ErrKey},
		{"RSA key for ES256", valid, &rsa2k.PublicKey, nil, ErrKey},
		{"EC key for RS256", goJose(t, jose.RS256, rsa2k, "{}"), &ec256.PublicKey, nil, ErrKey},
		{"RSA of 1024 bits", goJose(t, jose.RS256, rsaWeak, "{}"), &rsaWeak.PublicKey, nil, ErrKey},
		{"RSA of 4097 bits", goJose(t, jose.RS256, rsa2k, "{}"), fakeRSA(4097, 65537), nil, ErrKey},
		{"RSA exponent 3", goJose(t, jose.RS256, rsa2k, "{}"), &rsa.PublicKey{N: rsa2k.N, E: 3}, nil, ErrKey},
		{"another key of the same type", valid, &mustEC(t).PublicKey, nil, ErrSignature},
		{"payload changed", parts[0] + "." + seg(map[string]any{"a": 2}) + "." + parts[2], &ec256.PublicKey, nil, ErrSignature},
		{"short signature", parts[0] + "." + parts[1] + "." + b64(make([]byte, 63)), &ec256.PublicKey, nil, ErrSignature},
		{"PS256 signature under RS256", strings.Replace(goJose(t, jose.PS256, rsa2k, "{}"), parts0(t, jose.PS256), parts0(t, jose.RS256), 1), &rsa2k.PublicKey, nil, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs := tt.algs
			if algs == nil {
				algs = allowList
			}
			j, err := Parse(tt.token, algs)
			if err == nil {
				err = j.Verify(tt.key)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// parts0 is the header segment go-jose writes for alg with typ JWT.
func parts0(t *testing.T, alg jose.SignatureAlgorithm) string {
	return strings.Split(goJose(t, alg, keyFor(alg), "{}"), ".")[0]
}

func keyFor(alg jose.SignatureAlgorithm) crypto.Signer {
	if strings.HasPrefix(string(alg), "ES") {
		return ec256
	}
	return rsa2k
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseJWK(t *testing.T) {
	pub := func(k any) []byte {
		b, err := json.Marshal(jose.JSONWebKey{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withMember := func(raw []byte, name, value string) []byte {
		var m map[string]any
		json.Unmarshal(raw, &m)
		m[name] = value
		b, _ := json.Marshal(m)
		return b
	}
	offCurve := withMember(pub(&ec256.PublicKey), "y", b64(make([]byte, 32)))
	tests := []struct {
		name    string
		raw     []byte
		want    string // thumbprint; empty: computed by go-jose
		wantErr error
	}{
		{"RFC 7638 example", []byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", nil},
		{"RFC 9449 example", []byte(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", nil},
		{"P-384", pub(&ec384.PublicKey), "", nil},
		{"P-521", pub(&ec521.PublicKey), "", nil},
		{"RSA 2048", pub(&rsa2k.PublicKey), "", nil},
		{"private EC key", pub(ec256), "", ErrPrivateJWK},
		{"private RSA key", pub(rsa2k), "", ErrPrivateJWK},
		{"symmetric key", []byte(`{"kty":"oct","k":"c2VjcmV0"}`), "", ErrPrivateJWK},
		{"point off the curve", offCurve, "", ErrJWK},
		{"short x", withMember(pub(&ec256.PublicKey), "x", b64(make([]byte, 31))), "", ErrJWK},
		{"unknown curve", withMember(pub(&ec256.PublicKey), "crv", "P-192"), "", ErrJWK},
		{"RSA 1024", pub(&rsaWeak.PublicKey), "", ErrJWK},
		{"even exponent", withMember(pub(&rsa2k.PublicKey), "e", b64([]byte{2})), "", ErrJWK},
		// One key policy for every key presented (decisions: RSA 2048 to
		// 4096 bits with e = 65537, EC on P-256, P-384 or P-521): a larger
		// modulus or exponent makes every verification slower.
		{"RSA 4096", rsaJWK(fakeRSA(4096, 65537)), "", nil},
		{"RSA 4097", rsaJWK(fakeRSA(4097, 65537)), "", ErrJWK},
		{"RSA 16384", rsaJWK(fakeRSA(16384, 65537)), "", ErrJWK},
		{"exponent 3", rsaJWK(fakeRSA(2048, 3)), "", ErrJWK},
		{"exponent 2^31-1", rsaJWK(fakeRSA(2048, 1<<31-1)), "", ErrJWK},
		{"curve P-224", []byte(`{"kty":"EC","crv":"P-224","x":"` + b64(make([]byte, 28)) + `","y":"` + b64(make([]byte, 28)) + `"}`), "", ErrJWK},
		{"no kty", []byte(`{"x":"a"}`), "", ErrJWK},
		{"not an object", []byte(`"EC"`), "", ErrJWK},
		{"kty given twice", []byte(`{"kty":"EC","kty":"RSA","crv":"P-256","x":"a","y":"b"}`), "", ErrJWK},
		{"x not a string", []byte(`{"kty":"EC","crv":"P-256","x":1,"y":"b"}`), "", ErrJWK},
		{"private member other primes", []byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","oth":[]}`), "", ErrPrivateJWK},
		{"x with a line break", withMember(pub(&ec256.PublicKey), "x", b64(ec256.X.FillBytes(make([]byte, 32)))[:20]+"\n"+b64(ec256.X.FillBytes(make([]byte, 32)))[20:]), "", ErrJWK},
		{"n with a leading zero byte", withMember(pub(&rsa2k.PublicKey), "n", b64(append([]byte{0}, rsa2k.N.Bytes()...))), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, tp, err := ParseJWK(tt.raw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				sum, _ := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
				want = base64.RawURLEncoding.EncodeToString(sum)
			}
			if tp != want {
				t.Fatalf("thumbprint %s, want %s", tp, want)
			}
		})
	}
}

// nonCanonical changes the unused low bits of the last base64url character
// of seg, which a lenient decoder ignores and a strict one refuses. A
// 64-byte signature is 86 characters, so the last one carries 2 unused bits.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i^1])
}
