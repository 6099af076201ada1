package idtoken

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// The access token of OIDC Core Appendix A.3 with its at_hash for RS256;
// the SHA-384 and SHA-512 halves were computed by hand (Python hashlib).
const (
	vectorToken   = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
	vectorHash    = "77QmUPtjPfzWtF2AnpK9RQ"
	vectorHash384 = "jtAeDp945y1dDqU3nkIVGNZP1HjH_MFs"
	vectorHash512 = "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM"
)

func TestATHash(t *testing.T) {
	tests := []struct {
		name    string
		alg     jose.SignatureAlgorithm
		want    string
		wantErr string
	}{
		{"RS256, OIDC Core A.3", jose.RS256, vectorHash, ""},
		{"ES256", jose.ES256, vectorHash, ""},
		{"PS256", jose.PS256, vectorHash, ""},
		{"PS384", jose.PS384, vectorHash384, ""},
		{"ES384", jose.ES384, vectorHash384, ""},
		{"RS512", jose.RS512, vectorHash512, ""},
		{"HS256 is refused", jose.HS256, "", `no at_hash for algorithm "HS256"`},
		{"EdDSA is refused", jose.EdDSA, "", `no at_hash for algorithm "EdDSA"`},
		{"none is refused", "none", "", `no at_hash for algorithm "none"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ATHash(tt.alg, vectorToken)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ATHash = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

// joseSigner signs with a plain go-jose signer, for algorithms the key
// manager does not offer (PS384).
type joseSigner struct {
	alg jose.SignatureAlgorithm
	s   jose.Signer
}

func (j joseSigner) Algorithm() jose.SignatureAlgorithm { return j.alg }
func (j joseSigner) SignIDToken(p []byte) (string, error) {
	o, err := j.s.Sign(p)
	if err != nil {
		return "", err
	}
	return o.CompactSerialize()
}

// managerSigner returns the key manager's signer for alg, and the key that
// verifies it.
func managerSigner(t *testing.T, alg jose.SignatureAlgorithm) (Signer, any) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek, _ := keys.ParseKEK(keys.NewKEK())
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keys.NewManager(ctx, st, sealer, keys.Config{Algorithm: alg}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Signer()
	if err != nil {
		t.Fatal(err)
	}
	set := m.JWKS()
	return s, set.Key(s.KeyID())[0].Public().Key
}

func ps384Signer(t *testing.T) (Signer, any) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS384, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return joseSigner{jose.PS384, s}, &k.PublicKey
}

var pseudonymKey = bytes.Repeat([]byte{1}, 32)

func params(t *testing.T) Params {
	t.Helper()
	p := identity.Person{
		PID: "17056600574", SecurityLevel: 4, AMR: []string{identity.AMRPassword},
		AuthTime: time.Unix(1716473500, 0), IDP: "testidp-oidc", HPRNumber: "431001110",
	}
	c, err := identity.ClaimsFor(p, []string{"openid", helseid.ScopePID, helseid.ScopeHPRNumber}, identity.IDToken, pseudonymKey)
	if err != nil {
		t.Fatal(err)
	}
	return Params{
		Issuer:      "https://sts.example",
		ClientID:    "client-1",
		Now:         time.Unix(1716473563, 0),
		Nonce:       "n-0S6_WzA2Mj",
		SessionID:   "9E10C7DFEDC83C399DDBCD03B0907DBF",
		AccessToken: vectorToken,
		Person:      c,
	}
}

// wireClaims is how a client reads the token: go-jose's registered claims
// and the rest by name.
type wireClaims struct {
	jwt.Claims
	Nonce    string   `json:"nonce"`
	ATHash   string   `json:"at_hash"`
	AuthTime int64    `json:"auth_time"`
	SID      string   `json:"sid"`
	AMR      []string `json:"amr"`
	IDP      string   `json:"idp"`
	PID      string   `json:"helseid://claims/identity/pid"`
	HPR      string   `json:"helseid://claims/hpr/hpr_number"`
	Level    *string  `json:"helseid://claims/identity/security_level"`
}

func TestIssueVerifiesWithGoJOSE(t *testing.T) {
	tests := []struct {
		name       string
		signer     func(*testing.T) (Signer, any)
		alg        jose.SignatureAlgorithm
		wantATHash string
	}{
		{"RS256 from the key manager", func(t *testing.T) (Signer, any) { return managerSigner(t, jose.RS256) }, jose.RS256, vectorHash},
		{"ES256 from the key manager", func(t *testing.T) (Signer, any) { return managerSigner(t, jose.ES256) }, jose.ES256, vectorHash},
		{"PS384", ps384Signer, jose.PS384, vectorHash384},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, pub := tt.signer(t)
			p := params(t)
			tok, _, err := Issue(s, p)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{tt.alg})
			if err != nil {
				t.Fatal(err)
			}
			if typ := parsed.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "JWT" {
				t.Fatalf("typ = %v, want JWT", typ)
			}
			var c wireClaims
			if err := parsed.Claims(pub, &c); err != nil {
				t.Fatal(err)
			}
			if err := c.Claims.ValidateWithLeeway(jwt.Expected{
				Issuer: "https://sts.example", AnyAudience: jwt.Audience{"client-1"}, Time: p.Now.Add(time.Minute),
			}, 0); err != nil {
				t.Fatal(err)
			}
			sub, _ := identity.Pseudonym(pseudonymKey, "17056600574")
			switch {
			case len(c.Audience) != 1:
				t.Errorf("aud = %v, want the client alone", c.Audience)
			case c.Subject != sub:
				t.Errorf("sub = %q, want %q", c.Subject, sub)
			case c.ATHash != tt.wantATHash:
				t.Errorf("at_hash = %q, want %q", c.ATHash, tt.wantATHash)
			case c.Nonce != p.Nonce || c.SID != p.SessionID:
				t.Errorf("nonce %q sid %q", c.Nonce, c.SID)
			case c.AuthTime != 1716473500 || c.IDP != "testidp-oidc" || len(c.AMR) != 1 || c.AMR[0] != "pwd":
				t.Errorf("login claims: auth_time %d idp %q amr %v", c.AuthTime, c.IDP, c.AMR)
			case c.PID != "17056600574" || c.HPR != "431001110":
				t.Errorf("person claims: pid %q hpr %q", c.PID, c.HPR)
			case c.Level != nil:
				t.Errorf("security_level %q issued without its scope", *c.Level)
			case c.Expiry.Time().Sub(c.IssuedAt.Time()) != DefaultLifetime:
				t.Errorf("lifetime %v, want %v", c.Expiry.Time().Sub(c.IssuedAt.Time()), DefaultLifetime)
			}
		})
	}
}

func TestIssueWithoutAccessTokenOrNonce(t *testing.T) {
	s, _ := ps384Signer(t)
	p := params(t)
	p.AccessToken, p.Nonce = "", ""
	p.Lifetime = time.Minute
	_, c, err := Issue(s, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.ATHash != "" || c.Nonce != "" || c.Expiry-c.IssuedAt != 60 {
		t.Fatalf("claims = %+v", c)
	}
}

func TestIssueRefusesIncompleteParams(t *testing.T) {
	s, _ := ps384Signer(t)
	tests := []struct {
		name    string
		mutate  func(*Params)
		wantErr string
	}{
		{"no issuer", func(p *Params) { p.Issuer = "" }, "idtoken: no issuer"},
		{"no client", func(p *Params) { p.ClientID = "" }, "idtoken: no client id"},
		{"no time", func(p *Params) { p.Now = time.Time{} }, "idtoken: no time"},
		{"no person", func(p *Params) { p.Person = nil }, "idtoken: no subject"},
		{"no subject", func(p *Params) { p.Person = &identity.Claims{} }, "idtoken: no subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params(t)
			tt.mutate(&p)
			if _, _, err := Issue(s, p); err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestIssueRefusesSymmetricSigner(t *testing.T) {
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pseudonymKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := params(t)
	p.AccessToken = ""
	_, _, err = Issue(joseSigner{jose.HS256, hs}, p)
	if err == nil || !strings.Contains(err.Error(), `no at_hash for algorithm "HS256"`) {
		t.Fatalf("err = %v", err)
	}
}
