package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"unsafe"
)

// accessTokenHash is the ath claim for an access token: base64url of the
// SHA-256 of its ASCII value (RFC 9449 §4.2).
func accessTokenHash(accessToken string) string {
	// Hashed in place: a copy of the token for every request would be
	// a kilobyte of garbage; the hash only reads the bytes.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(accessToken), len(accessToken)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
