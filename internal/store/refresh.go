package store

import "time"

// RefreshRetryGrace is how long after a rotation the rotated token may be
// rotated once more, by a client that never got the answer (store
// RotateRefreshToken).
const RefreshRetryGrace = 60 * time.Second

// RefreshStatus is where a refresh token is in its life.
type RefreshStatus string

const (
	RefreshActive  RefreshStatus = "active"
	RefreshRotated RefreshStatus = "rotated" // spent: using it again revokes the family
	RefreshRevoked RefreshStatus = "revoked"
)

// RefreshToken is a refresh token as stored. The value the client holds is
// never stored: ID is its hash. A family is the chain of tokens that came
// from one login by rotation; it shares one absolute expiry.
type RefreshToken struct {
	ID       string
	FamilyID string
	ClientID string
	// JKT is the thumbprint of the DPoP key the token is bound to; empty
	// for a token issued without DPoP.
	JKT string
	// Grant is what the token may be exchanged for (scopes, resources,
	// the user, the organisation), written and read by the token endpoint;
	// the store keeps it as opaque bytes.
	Grant     []byte
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Status and UsedAt are kept by the store: Create makes a token
	// active, RotateRefreshToken marks it rotated at now.
	Status RefreshStatus
	UsedAt time.Time
}
