package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/idtoken"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
)

// SignerSource gives the keys that sign now (keys.Manager).
type SignerSource interface {
	// Signer is the access-token key.
	Signer() (*keys.Signer, error)
	// IDTokenSigner is the key of ID tokens in alg; "" is the default
	// (keys.Manager.IDTokenSigner).
	IDTokenSigner(alg jose.SignatureAlgorithm) (*keys.Signer, error)
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
		ids, err := e.idTokenSigner(t.Client, signer)
		if err != nil {
			return nil, err
		}
		// HelseID: for the client alone, RS256 unless it asked otherwise,
		// with the at_hash of that algorithm.
		idt, _, err = idtoken.Issue(ids, idtoken.Params{
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

// idTokenSigner is the key of c's ID tokens: in the algorithm it registered
// (id_token_signed_response_alg), else RS256, whatever the access tokens
// are signed with. Most often that is the access-token key, and no second
// lookup is made.
func (e *Endpoint) idTokenSigner(c *registry.Client, access *keys.Signer) (*keys.Signer, error) {
	alg := jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg)
	if alg == access.Algorithm() || (alg == "" && access.Algorithm() == idtoken.DefaultAlgorithm) {
		return access, nil
	}
	s, err := e.keys.IDTokenSigner(alg)
	var ke *keys.IDKeyError
	if errors.As(err, &ke) {
		// The client asked for an algorithm whose first key is still in
		// its publication lead (keys.Manager explains why it waits).
		// Another algorithm would fail at a client that checks alg;
		// nothing is spent, and the code can be redeemed once the key
		// signs, if it has not expired by then.
		desc := fmt.Sprintf("ID tokens for this client are signed with %s, and no key signs with %s yet: try again later", ke.Algorithm, ke.Algorithm)
		if !ke.From.IsZero() {
			desc = fmt.Sprintf("ID tokens for this client are signed with %s, and the first %s key signs from %s: try again then",
				ke.Algorithm, ke.Algorithm, ke.From.UTC().Format(time.RFC3339))
		}
		return nil, oauth.New(oauth.CodeTemporarilyUnavailable, desc).Wrap(err)
	}
	return s, err
}
