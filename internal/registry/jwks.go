package registry

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
)

// JWKSError is one problem with a client's public key set. Key is the index
// of the key in the set, or -1 when the problem is with the set as a whole.
type JWKSError struct {
	Key    int
	KeyID  string
	Reason string
}

func (e *JWKSError) Error() string {
	return "registry: jwks: " + e.Where() + e.Reason
}

// Where names the key the problem is about, ready to go in front of Reason:
// `key 1 (kid "abc"): ` or an empty string for the whole set.
func (e *JWKSError) Where() string {
	switch {
	case e.Key < 0:
		return ""
	case e.KeyID != "":
		return fmt.Sprintf("key %d (kid %q): ", e.Key, e.KeyID)
	default:
		return fmt.Sprintf("key %d: ", e.Key)
	}
}

// privateMembers are the JWK members that carry secret material (RFC 7518
// §6.2.2, §6.3.2, §6.4.1; "priv" for the post-quantum types go-jose knows).
// They are looked for before go-jose parses the key, so that a pasted
// private key is refused without being decoded or echoed anywhere.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// ParseJWKS parses a client's registered public keys and checks each one as
// a key that may verify client assertions (docs/design.md,
// client assertions): public only, within the key policy (RSA of 2048 to 4096
// bits with e = 65537, or EC on P-256, P-384 or P-521), use "sig" if given, an alg that fits the key if
// given, and no two keys with the same kid or the same key.
//
// data is a JWKS ({"keys": [...]}) or, as Selvbetjening accepts, one JWK. A
// key without a kid gets its RFC 7638 thumbprint as kid, which is what
// HelseID's libraries and `tillit keys generate` put in the assertion
// header. Every problem is reported: the error is a *JWKSError or several
// joined with errors.Join.
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	data = bytes.TrimSpace(data)
	var set struct {
		Keys []json.RawMessage `json:"keys"`
		Kty  json.RawMessage   `json:"kty"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, &JWKSError{Key: -1, Reason: fmt.Sprintf("not a JSON object: %v", err)}
	}
	raws := set.Keys
	if set.Kty != nil {
		if set.Keys != nil {
			return nil, &JWKSError{Key: -1, Reason: `has both "keys" and "kty": give a key set or one key`}
		}
		raws = []json.RawMessage{data}
	}
	if len(raws) == 0 {
		return nil, &JWKSError{Key: -1, Reason: "has no keys"}
	}

	var errs []error
	keys := make([]jose.JSONWebKey, 0, len(raws))
	byKID := make(map[string]int)
	byThumb := make(map[string]int)
	for i, raw := range raws {
		k, err := parseKey(i, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		thumb, err := jws.Thumbprint(&k)
		if err != nil {
			errs = append(errs, &JWKSError{Key: i, KeyID: k.KeyID, Reason: fmt.Sprintf("thumbprint: %v", err)})
			continue
		}
		if k.KeyID == "" {
			k.KeyID = thumb
		}
		if j, dup := byKID[k.KeyID]; dup {
			errs = append(errs, &JWKSError{Key: i, KeyID: k.KeyID, Reason: fmt.Sprintf("kid is also used by key %d", j)})
			continue
		}
		if j, dup := byThumb[thumb]; dup {
			errs = append(errs, &JWKSError{Key: i, KeyID: k.KeyID, Reason: fmt.Sprintf("is the same key as key %d", j)})
			continue
		}
		byKID[k.KeyID] = i
		byThumb[thumb] = i
		keys = append(keys, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

func parseKey(i int, raw json.RawMessage) (jose.JSONWebKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return jose.JSONWebKey{}, &JWKSError{Key: i, Reason: "not a JSON object"}
	}
	var kid string
	if v, ok := members["kid"]; ok {
		// A kid that is not a string is reported by go-jose below.
		_ = json.Unmarshal(v, &kid)
	}
	fail := func(format string, args ...any) (jose.JSONWebKey, error) {
		return jose.JSONWebKey{}, &JWKSError{Key: i, KeyID: kid, Reason: fmt.Sprintf(format, args...)}
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			if m == "k" {
				return fail("is a symmetric key; register an RSA or EC public key")
			}
			return fail("holds private key material (%q); register only the public key", m)
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		// go-jose refuses a modulus of more than 4096 bits too, but
		// without saying so.
		if bits := modulusBits(members); bits > jws.MaxRSABits {
			return fail("RSA key of %d bits is longer than %d", bits, jws.MaxRSABits)
		}
		return fail("%v", err)
	}
	switch k.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		if err := jws.CheckPublicKey(k.Key); err != nil {
			return fail("%v", err)
		}
	default:
		return fail("key type %q is not RSA or EC", kty(members))
	}
	if k.Use != "" && k.Use != "sig" {
		return fail("use is %q, want \"sig\"", k.Use)
	}
	if k.Algorithm != "" {
		alg := jose.SignatureAlgorithm(k.Algorithm)
		if !slices.Contains(jws.Algorithms, alg) {
			return fail("alg %q is not one of %v", k.Algorithm, jws.AlgorithmNames(jws.Algorithms))
		}
		if err := jws.CheckKey(alg, k.Key); err != nil {
			return fail("%v", err)
		}
	}
	return k, nil
}

// modulusBits is the size of an RSA JWK's modulus n, or 0 if it has none
// that decodes.
func modulusBits(members map[string]json.RawMessage) int {
	var n string
	if json.Unmarshal(members["n"], &n) != nil {
		return 0
	}
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		return 0
	}
	return new(big.Int).SetBytes(b).BitLen()
}

func kty(members map[string]json.RawMessage) string {
	var s string
	_ = json.Unmarshal(members["kty"], &s)
	return s
}

// MarshalJWKS writes keys as a JWKS in one canonical form: public members
// only, kid always present, no whitespace. The same keys always give the
// same bytes, so Sync sees an unchanged key set as unchanged and writes
// nothing.
func MarshalJWKS(keys []jose.JSONWebKey) ([]byte, error) {
	pub := make([]jose.JSONWebKey, len(keys))
	for i := range keys {
		if !keys[i].IsPublic() {
			return nil, fmt.Errorf("registry: jwks: key %d is not a public key", i)
		}
		pub[i] = keys[i]
	}
	out, err := json.Marshal(jose.JSONWebKeySet{Keys: pub})
	if err != nil {
		return nil, fmt.Errorf("registry: jwks: %w", err)
	}
	return out, nil
}
