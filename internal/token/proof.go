package token

import (
	"errors"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/oauth"
)

// verifyProof checks the DPoP proof of a token request (RFC 9449 §4.3),
// nil when the request has none: whether a token may be Bearer is decided
// once the grant has named the API.
func (e *Endpoint) verifyProof(req *Request, now time.Time) (*dpop.Proof, error) {
	if req.DPoP == "" {
		return nil, nil
	}
	proof, err := e.proofs.Verify(req.DPoP, dpop.Request{Method: http.MethodPost, URL: e.url, Now: now})
	if err != nil {
		return nil, e.proofError(err, now)
	}
	return proof, nil
}

func (e *Endpoint) proofError(err error, now time.Time) error { return proofError(e.proofs, err, now) }

// proofError maps a refused proof to its OAuth error; a missing or stale
// nonce gets a fresh one (RFC 9449 §8).
func proofError(proofs *dpop.Verifier, err error, now time.Time) error {
	var de *dpop.Error
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		oe := oauth.UseDPoPNonce(proofs.Nonces.Issue(now))
		if errors.As(err, &de) {
			oe.Description = de.Reason
		}
		return oe
	case errors.As(err, &de):
		return oauth.InvalidDPoPProof(de.Reason)
	}
	return err
}

// offerNonce hands out the current nonce with an answer when nonces are
// required, so that clients that keep it skip the use_dpop_nonce round
// trip next time.
func (e *Endpoint) offerNonce(w http.ResponseWriter) {
	if e.proofs.Nonces != nil {
		w.Header().Set("DPoP-Nonce", e.proofs.Nonces.Issue(e.cfg.Now()))
	}
}
