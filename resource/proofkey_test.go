package resource_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/jwttest"
)

// forgeProof is a proof for GET apiURL with token whose header carries jwk
// and whose signature is random bytes: valid in every claim, so that only
// the key decides.
func forgeProof(t testing.TB, jwk map[string]string, token string, now time.Time) string {
	t.Helper()
	alg := "RS256"
	if jwk["kty"] == "EC" {
		alg = "ES256"
	}
	sig := make([]byte, 512)
	rand.Read(sig)
	ath := sha256.Sum256([]byte(token))
	return jwttest.JWT{
		Header: map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwk},
		Claims: map[string]any{"jti": rand.Text(), "htm": http.MethodGet, "htu": apiURL, "iat": now.Unix(),
			"ath": base64.RawURLEncoding.EncodeToString(ath[:])},
		Signature: base64.RawURLEncoding.EncodeToString(sig),
	}.Sign(t)
}
