package resource

import (
	"crypto/rand"
	"fmt"

	"github.com/tillit-sts/tillit/dpop"
)

// minNonceSecret is the shortest shared nonce key SharedNonces takes: the
// nonces' MAC is only as strong as its key.
const minNonceSecret = 32

// NewNonces returns a nonce source with a random key that lives as long as
// the process, for Config.Nonces of an API that runs as one instance:
//
//	resource.Config{..., Nonces: resource.NewNonces()}
//
// Nonces from before a restart are refused, which costs each client one
// use_dpop_nonce round trip. Instances behind one load balancer accept
// each other's nonces only with SharedNonces.
func NewNonces() *dpop.Nonces {
	secret := make([]byte, minNonceSecret)
	rand.Read(secret) // never fails (crypto/rand)
	return dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: secret})
}

// SharedNonces returns a nonce source keyed with secret, for the instances
// of an API that share it: each accepts the nonces of the others. The
// secret must be at least 32 random bytes and kept like a private key.
// Rotate it with the result's SetKeys.
func SharedNonces(secret []byte) (*dpop.Nonces, error) {
	if len(secret) < minNonceSecret {
		return nil, fmt.Errorf("resource: the nonce key has %d bytes, want at least %d", len(secret), minNonceSecret)
	}
	return dpop.NewNonces(0, dpop.NonceKey{ID: 1, Secret: append([]byte(nil), secret...)}), nil
}
