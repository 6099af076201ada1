package jws

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzParseVerify checks this package against go-jose: whatever it accepts,
// go-jose accepts too, with the same payload. (The reverse need not hold:
// this package is stricter about base64 and crit.)
func FuzzParseVerify(f *testing.F) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256} {
		f.Add(goJose(f, alg, keyFor(alg), `{"sub":"x","n":1}`))
	}
	f.Add("e30.e30.AA")
	f.Fuzz(func(t *testing.T, token string) {
		for _, key := range []crypto.PublicKey{&ec256.PublicKey, &rsa2k.PublicKey} {
			j, err := Parse(token, allowList)
			if err != nil || j.Verify(key) != nil {
				continue
			}
			obj, err := jose.ParseSignedCompact(token, allowList)
			if err != nil {
				t.Fatalf("accepted what go-jose cannot parse: %v", err)
			}
			payload, err := obj.Verify(key)
			if err != nil {
				t.Fatalf("accepted what go-jose refuses: %v", err)
			}
			if !bytes.Equal(payload, j.Payload) {
				t.Fatalf("payload %q, go-jose %q", j.Payload, payload)
			}
		}
	})
}

// FuzzParseJWK checks ParseJWK against go-jose: a key it accepts is a public
// key go-jose reads the same, with the same thumbprint.
func FuzzParseJWK(f *testing.F) {
	for _, k := range []any{&ec256.PublicKey, &ec384.PublicKey, &rsa2k.PublicKey} {
		b, _ := json.Marshal(jose.JSONWebKey{Key: k})
		f.Add(b)
	}
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		key, tp, err := ParseJWK(raw)
		if err != nil {
			return
		}
		var jk jose.JSONWebKey
		if err := json.Unmarshal(raw, &jk); err != nil {
			t.Fatalf("accepted what go-jose cannot read: %v", err)
		}
		if !jk.IsPublic() {
			t.Fatal("accepted a key go-jose reads as private")
		}
		sum, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		goSum, err := jk.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if want := base64.RawURLEncoding.EncodeToString(goSum); tp != want || !bytes.Equal(sum, goSum) {
			t.Fatalf("thumbprint %s, go-jose %s", tp, want)
		}
	})
}
