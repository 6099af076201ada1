package token

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/oauth"
)

// SignerSource gives the key that signs now.
type SignerSource interface {
	Signer() (*keys.Signer, error)
}

// sign fills in what the pipeline decides of every token (iss, times, jti,
// aud, scope, cnf), signs it with the current key and returns the answer.
// It spends nothing: a token signed for a request whose commit is then
// refused is thrown away unseen.
func (e *Endpoint) sign(t *tokenRequest, is *issue) (*response, error) {
	lifetime := e.tokenLifetime
	for _, l := range []time.Duration{is.API.AccessTokenLifetime, t.Client.AccessTokenLifetime, is.Lifetime} {
		if l > 0 && l < lifetime {
			lifetime = l
		}
	}
	c := &is.Claims
	c.Issuer = e.cfg.Issuer
	c.IssuedAt = t.Now.Unix()
	c.NotBefore = c.IssuedAt
	c.Expiry = t.Now.Add(lifetime).Unix()
	c.JTI = newTokenID()
	c.Audience = is.API.Audience
	c.Scope = is.Scopes
	typ := oauth.TokenTypeBearer
	if t.Proof != nil {
		c.Cnf = &Confirmation{JKT: t.Proof.Thumbprint}
		typ = oauth.TokenTypeDPoP
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	signer, err := e.keys.Signer()
	if err != nil {
		return nil, err
	}
	at, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	var idt string
	if p := is.IDToken; p != nil {
		// HelseID: signed like the access token, by the active key (RS256
		// unless the deployment chose another algorithm), for the client
		// alone.
		idt, _, err = idtoken.Issue(signer, idtoken.Params{
			Issuer:      e.cfg.Issuer,
			ClientID:    t.Client.ID,
			Now:         t.Now,
			Nonce:       p.Nonce,
			SessionID:   p.SessionID,
			AccessToken: at,
			Person:      p.Person,
		})
		if err != nil {
			return nil, err
		}
	}
	return &response{
		IDToken:         idt,
		AccessToken:     at,
		IssuedTokenType: is.IssuedTokenType,
		TokenType:       typ,
		ExpiresIn:       int64(lifetime / time.Second),
		Scope:           strings.Join(is.Scopes, " "),
		RejectedScope:   strings.Join(is.RejectedScopes, " "),
	}, nil
}
