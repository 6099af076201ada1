package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"unsafe"
)

// AccessTokenHash is the ath claim for an access token: base64url of the
// SHA-256 of its ASCII value (RFC 9449 §4.2).
func AccessTokenHash(accessToken string) string {
	sum := AccessTokenDigest(accessToken)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AccessTokenDigest is the SHA-256 of an access token, which ath encodes:
// for an API that also keys a cache on it, so that the token is hashed
// once per request (see Request.AccessTokenHash).
func AccessTokenDigest(accessToken string) [sha256.Size]byte {
	// Hashed in place: a copy of the token for every request would be
	// a kilobyte of garbage; the hash only reads the bytes.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(accessToken), len(accessToken)))
}
