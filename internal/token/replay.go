package token

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/store"
)

// The replay keys are namespaced so that an assertion jti and a proof jti
// cannot collide, and hashed so that their length is fixed whatever a client
// sends. A request spends them in the commit of its decision.
func assertionKey(clientID, jti string) string { return "a|" + hashKey(clientID, jti) }

func proofKey(p *dpop.Proof) string { return "p|" + hashKey(p.Thumbprint, p.JTI) }

func hashKey(scope, jti string) string {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// replayError maps a spend the store refused to what the client sent
// twice, and counts it.
func (b *base) replayError(err error) error {
	var re *store.ReplayError
	switch {
	case errors.As(err, &re) && strings.HasPrefix(re.Key, "p|"):
		b.cfg.Metrics.Replay("proof")
		return oauth.InvalidDPoPProof("DPoP proof was already used (jti)")
	case errors.Is(err, store.ErrReplay):
		b.cfg.Metrics.Replay("assertion")
		return oauth.InvalidClient("client_assertion was already used (jti)")
	}
	return err
}
