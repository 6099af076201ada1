package loadtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/keyfile"
)

// The generator signs its assertions and proofs itself instead of through
// client.ClientAssertion and dpop.Signer. Those go through go-jose, which
// marshals the protected header (for a proof, the whole public JWK) and the
// claims by reflection on every call: on a 2-core machine an ES256
// assertion and proof cost about 95 µs of CPU that way, 62 µs here, and
// 59 µs for the two signatures alone (BenchmarkLibraryRequest,
// BenchmarkNewRequest, BenchmarkSignaturesOnly). Where the server shares
// the cores with the generator, that difference is CPU taken from the
// server. Here the header is encoded once, the claims are appended to a
// buffer, and only the hash and the signature are computed per token. The
// tests check the tokens with the verifiers Tillit uses and with go-jose.

// jwsSigner makes compact JWS with one key and one fixed protected header.
// It is safe for concurrent use.
type jwsSigner struct {
	key  crypto.Signer
	hash crypto.Hash
	// opts is crypto.SignerOpts for RSA (PKCS #1 v1.5 or PSS); ECDSA uses
	// ecdsa.Sign for r and s.
	opts crypto.SignerOpts
	// ecSize is the byte length of r and of s for ES*, zero for RSA
	// (RFC 7518 §3.4).
	ecSize int
	// header is base64url(protected header) followed by ".".
	header string
	sigLen int
}

// header fields, in the order go-jose writes them.
type jwsHeader struct {
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk,omitempty"`
	KID string          `json:"kid,omitempty"`
	Typ string          `json:"typ"`
}

func newJWSSigner(key *jose.JSONWebKey, typ string, embedJWK bool) (*jwsSigner, error) {
	priv, err := keyfile.Signer(key)
	if err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(key.Algorithm)
	if alg == "" {
		return nil, fmt.Errorf("loadtest: key has no alg")
	}
	if err := jws.CheckKey(alg, priv.Public()); err != nil {
		return nil, fmt.Errorf("loadtest: key: %w", err)
	}
	s := &jwsSigner{key: priv}
	switch alg {
	case jose.ES256, jose.RS256, jose.PS256:
		s.hash = crypto.SHA256
	case jose.ES384, jose.RS384, jose.PS384:
		s.hash = crypto.SHA384
	case jose.ES512, jose.RS512, jose.PS512:
		s.hash = crypto.SHA512
	default:
		return nil, fmt.Errorf("loadtest: unsupported algorithm %s", alg)
	}
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		s.ecSize = (k.Curve.Params().BitSize + 7) / 8
		s.sigLen = 2 * s.ecSize
	case *rsa.PrivateKey:
		s.sigLen = k.Size()
		s.opts = s.hash
		if alg == jose.PS256 || alg == jose.PS384 || alg == jose.PS512 {
			// RFC 7518 §3.5: the salt is as long as the hash.
			s.opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.hash}
		}
	default:
		return nil, fmt.Errorf("loadtest: unsupported key type %T", priv)
	}

	h := jwsHeader{Alg: string(alg), Typ: typ}
	if embedJWK {
		// The public key only (RFC 9449 §4.2), without kid, as
		// dpop.Signer sends it.
		if h.JWK, err = json.Marshal(jose.JSONWebKey{Key: priv.Public()}); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
	} else {
		h.KID = key.KeyID
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	s.header = base64.RawURLEncoding.EncodeToString(b) + "."
	return s, nil
}

// sign returns header.payload.signature. buf is scratch space that is
// returned grown, so a worker can keep it between calls.
func (s *jwsSigner) sign(buf, payload []byte) (string, []byte, error) {
	enc := base64.RawURLEncoding
	buf = append(buf[:0], s.header...)
	buf = enc.AppendEncode(buf, payload)
	h := s.hash.New()
	h.Write(buf)
	var sum [64]byte
	digest := h.Sum(sum[:0])

	buf = append(buf, '.')
	if s.ecSize > 0 {
		r, ss, err := ecdsa.Sign(rand.Reader, s.key.(*ecdsa.PrivateKey), digest)
		if err != nil {
			return "", buf, fmt.Errorf("loadtest: sign: %w", err)
		}
		var raw [2 * 66]byte // P-521 is the largest
		sig := raw[:s.sigLen]
		r.FillBytes(sig[:s.ecSize])
		ss.FillBytes(sig[s.ecSize:])
		buf = enc.AppendEncode(buf, sig)
	} else {
		sig, err := s.key.Sign(rand.Reader, digest, s.opts)
		if err != nil {
			return "", buf, fmt.Errorf("loadtest: sign: %w", err)
		}
		buf = enc.AppendEncode(buf, sig)
	}
	return string(buf), buf, nil
}

// claimWriter appends the claims of assertions and proofs. The parts that
// never change are JSON-encoded once.
type claimWriter struct {
	// assertionHead is `{"iss":…,"sub":…,"aud":…,"iat":`.
	assertionHead []byte
	// proofHTU is `,"htm":"POST","htu":…,"iat":`.
	proofHTU []byte
	lifetime int64
}

func newClaimWriter(clientID, audience, htu string, lifetime time.Duration) *claimWriter {
	q := func(s string) string {
		b, _ := json.Marshal(s) // a string always marshals
		return string(b)
	}
	return &claimWriter{
		assertionHead: []byte(`{"iss":` + q(clientID) + `,"sub":` + q(clientID) + `,"aud":` + q(audience) + `,"iat":`),
		proofHTU:      []byte(`,"htm":"POST","htu":` + q(htu) + `,"iat":`),
		lifetime:      int64(lifetime / time.Second),
	}
}

// assertion appends the claims of a client assertion (RFC 7523 §3), as
// client.ClientAssertion writes them: iat = nbf = now, exp = now +
// lifetime and a new random jti.
func (c *claimWriter) assertion(buf []byte, now time.Time) []byte {
	t := now.Unix()
	buf = append(buf[:0], c.assertionHead...)
	buf = strconv.AppendInt(buf, t, 10)
	buf = append(buf, `,"nbf":`...)
	buf = strconv.AppendInt(buf, t, 10)
	buf = append(buf, `,"exp":`...)
	buf = strconv.AppendInt(buf, t+c.lifetime, 10)
	buf = append(buf, `,"jti":"`...)
	buf = append(buf, jws.NewJTI()...) // base64url: nothing to escape
	return append(buf, `"}`...)
}

// proof appends the claims of a DPoP proof for a POST to the token
// endpoint (RFC 9449 §4.2), as dpop.Signer writes them.
func (c *claimWriter) proof(buf []byte, now time.Time, nonce string) []byte {
	buf = append(buf[:0], `{"jti":"`...)
	buf = append(buf, jws.NewJTI()...)
	buf = append(buf, '"')
	buf = append(buf, c.proofHTU...)
	buf = strconv.AppendInt(buf, now.Unix(), 10)
	if nonce != "" {
		buf = append(buf, `,"nonce":`...)
		buf = appendJSONString(buf, nonce)
	}
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string. A nonce is NQCHAR
// (RFC 9449 §8.1), which needs no escaping; anything else a server sends
// goes through encoding/json.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			b, _ := json.Marshal(s) // a string always marshals
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
