package dpop

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
)

// Limits on untrusted input. A proof with an RSA-4096 key in its header is
// about 1.5 KiB; nothing legitimate comes near maxProofSize.
const (
	maxProofSize = 8 << 10
	maxJTILength = 256
)

// DefaultWindow is how far iat may be from now, either way: HelseID's
// window, applied even when the proof carries a server nonce.
const DefaultWindow = 60 * time.Second

// Verifier checks DPoP proofs (RFC 9449 §4.3). The zero value accepts every
// asymmetric algorithm HelseID allows (RS, PS and ES, 256 to 512) with the default iat window and no server nonce.
// Replay (jti) is left to the caller, which knows whether its replay state
// is a database or a cache; Proof.Expires says how long to remember the jti.
type Verifier struct {
	// Algorithms allowed; nil means every asymmetric one HelseID allows.
	Algorithms []jose.SignatureAlgorithm
	// Window is the accepted distance between iat and now; zero means
	// DefaultWindow. It applies even when a nonce is present.
	Window time.Duration
	// Nonces, when set, makes a valid server nonce mandatory.
	Nonces *Nonces
}

// Request is what a proof must match.
type Request struct {
	Method string
	// URL is the target URL of the request as the server sees it from the
	// outside: the issuer's token endpoint, or an API's public URL. It
	// is compared with htu in normal form (RFC 9449 §4.3 point 9): scheme
	// and host in lower case, no default port, query or fragment.
	URL string
	// AccessToken, when set, must be matched by ath. APIs set it; the token
	// endpoint does not.
	AccessToken string
	// JKT, when set, is the thumbprint of the key the access token is
	// bound to (cnf.jkt). A proof with another key is then refused before
	// its signature is checked, so that a key the caller would refuse
	// anyway costs it nothing to verify. APIs set it.
	JKT string
	// AccessTokenHash, when set, is the ath that AccessToken gives
	// (base64url of its SHA-256), from a caller that hashed the token
	// anyway; the token is then not hashed again.
	AccessTokenHash string
	Now             time.Time
}

// Proof is a verified proof.
type Proof struct {
	JTI       string
	Method    string
	URL       string
	IssuedAt  time.Time
	Nonce     string
	Algorithm jose.SignatureAlgorithm
	// Thumbprint is the RFC 7638 thumbprint of the proof's key, which
	// cnf.jkt of a token bound to the key carries.
	Thumbprint string
	// Expires is when the jti may be forgotten: after it, iat is too old
	// for the proof to pass again.
	Expires time.Time
}

// receivedClaims are the claims as they came. A string where a number
// belongs is a malformed proof, not a zero, so iat keeps its JSON value
// until it is checked.
type receivedClaims struct {
	JTI, HTM, HTU, Nonce, ATH *string
	IAT                       jws.Value
}

var claimNames = jws.NewNames("jti", "htm", "htu", "nonce", "ath", "iat")

func (c *receivedClaims) read(payload []byte) error {
	strs := [...]**string{&c.JTI, &c.HTM, &c.HTU, &c.Nonce, &c.ATH}
	return claimNames.Read(payload, func(i int, name []byte, v jws.Value) error {
		switch {
		case i < 0:
			return nil
		case i == len(strs):
			c.IAT = v
			return nil
		}
		return jws.StringPointerMember(name, v, strs[i])
	})
}

// Verify checks proof against r. Every failure matches ErrInvalidProof or,
// for a missing or stale nonce, ErrUseNonce.
func (v *Verifier) Verify(proof string, r Request) (*Proof, error) {
	if proof == "" {
		return nil, invalid("DPoP proof is missing")
	}
	if len(proof) > maxProofSize {
		return nil, invalid("DPoP proof is too large")
	}
	algs := v.Algorithms
	if algs == nil {
		algs = jws.Algorithms
	}
	tok, err := jws.Parse(proof, algs)
	if err != nil {
		if errors.Is(err, jws.ErrAlgorithm) {
			return nil, invalid("DPoP proof alg is not allowed (allowed: " + strings.Join(jws.AlgorithmNames(algs), " ") + ")")
		}
		return nil, invalid("DPoP proof is not a well-formed JWS")
	}
	h := &tok.Header
	if h.Typ != "dpop+jwt" {
		return nil, invalid(`DPoP proof typ must be "dpop+jwt"`)
	}
	if len(h.JWK) == 0 {
		return nil, invalid("DPoP proof has no jwk header")
	}
	key, jkt, err := jws.ParseJWK(h.JWK)
	switch {
	case errors.Is(err, jws.ErrPrivateJWK):
		return nil, invalid("DPoP proof jwk must not contain a private key")
	case err != nil:
		return nil, invalid("DPoP proof jwk is not a usable public key: " + strings.TrimPrefix(err.Error(), "jws: unusable jwk: "))
	}
	if r.JKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(r.JKT)) != 1 {
		return nil, invalid("DPoP proof is signed with another key than the access token is bound to (cnf.jkt)")
	}
	alg := tok.Algorithm()
	if err := jws.CheckKey(alg, key); err != nil {
		return nil, invalid("DPoP proof jwk does not fit alg: " + err.Error())
	}
	if err := tok.Verify(key); err != nil {
		return nil, invalid("DPoP proof signature is invalid")
	}
	payload := tok.Payload

	// One JSON object and nothing after it, each claim read here at most
	// once and of the right type.
	var c receivedClaims
	if err := c.read(payload); err != nil {
		return nil, invalid("DPoP proof claims are not a JSON object of the right types")
	}
	switch {
	case c.JTI == nil || *c.JTI == "":
		return nil, invalid("DPoP proof has no jti")
	case len(*c.JTI) > maxJTILength:
		return nil, invalid("DPoP proof jti is too long")
	case c.HTM == nil:
		return nil, invalid("DPoP proof has no htm")
	case c.HTU == nil:
		return nil, invalid("DPoP proof has no htu")
	case c.IAT.Kind() == 0 || c.IAT.Kind() == jws.KindNull:
		return nil, invalid("DPoP proof has no iat")
	}
	iat, ok := numericDate(c.IAT)
	if !ok {
		return nil, invalid("DPoP proof iat is not a number")
	}
	if *c.HTM != r.Method {
		return nil, invalid("DPoP proof htm does not match the request method")
	}
	// Clients nearly always send the URL exactly as the server sees it;
	// only when they do not are both parsed and compared in normal form.
	if *c.HTU != r.URL {
		got, err := normalizeURL(*c.HTU)
		if err != nil {
			return nil, invalid("DPoP proof htu is not a valid URL")
		}
		want, err := normalizeURL(r.URL)
		if err != nil {
			return nil, fmt.Errorf("dpop: request URL %q: %w", r.URL, err)
		}
		if got != want {
			return nil, invalid("DPoP proof htu does not match the request URL")
		}
	}
	window := v.Window
	if window == 0 {
		window = DefaultWindow
	}
	now := r.Now
	if d := iat.Sub(now); d > window {
		return nil, invalid("DPoP proof iat is in the future")
	} else if d < -window {
		return nil, invalid("DPoP proof iat is too old")
	}
	if r.AccessToken != "" {
		if c.ATH == nil {
			return nil, invalid("DPoP proof has no ath")
		}
		want := r.AccessTokenHash
		if want == "" {
			want = accessTokenHash(r.AccessToken)
		}
		if subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(want)) != 1 {
			return nil, invalid("DPoP proof ath does not match the access token")
		}
	}
	nonce := ""
	if c.Nonce != nil {
		nonce = *c.Nonce
	}
	if v.Nonces != nil {
		if nonce == "" {
			return nil, nonceErr("DPoP proof has no nonce; use the one in the DPoP-Nonce header")
		}
		if err := v.Nonces.Check(nonce, now); err != nil {
			return nil, nonceErr("DPoP proof nonce is " + err.Error() + "; use the one in the DPoP-Nonce header")
		}
	}
	return &Proof{
		JTI:        *c.JTI,
		Method:     *c.HTM,
		URL:        *c.HTU,
		IssuedAt:   iat,
		Nonce:      nonce,
		Algorithm:  alg,
		Thumbprint: jkt,
		Expires:    iat.Add(window),
	}, nil
}

// numericDate reads a JSON number of seconds (RFC 7519 §2), fractions
// allowed, as a time. Strings, absurd values and numbers beyond float64
// are refused.
func numericDate(v jws.Value) (time.Time, bool) {
	f, ok := v.Float()
	if !ok || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
