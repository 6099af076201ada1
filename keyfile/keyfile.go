package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
)

// maxFileSize bounds what ReadFile reads: a key file is a few KiB at most.
const maxFileSize = 64 << 10

// Generate makes a private key for alg: RSA of rsaBits (2048 when zero) for
// RS* and PS*, P-256, P-384 or P-521 for ES256, ES384 and ES512. The JWK
// carries alg, use "sig" and kid = its RFC 7638 thumbprint.
func Generate(alg jose.SignatureAlgorithm, rsaBits int) (*jose.JSONWebKey, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		if rsaBits == 0 {
			rsaBits = 2048
		}
		if rsaBits < jws.MinRSABits || rsaBits > jws.MaxRSABits {
			return nil, fmt.Errorf("keyfile: RSA keys must have at least %d and at most %d bits", jws.MinRSABits, jws.MaxRSABits)
		}
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		return nil, fmt.Errorf("keyfile: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keyfile: generate: %w", err)
	}
	return FromKey(key, alg)
}

// FromKey wraps a private key in a JWK with alg, use and kid. An empty alg
// picks PS256 for RSA and, for EC, the ES algorithm of the key's curve.
func FromKey(key crypto.Signer, alg jose.SignatureAlgorithm) (*jose.JSONWebKey, error) {
	if alg == "" {
		a, err := jws.DefaultAlgorithm(key.Public())
		if err != nil {
			return nil, err
		}
		alg = a
	}
	if err := jws.CheckKey(alg, key.Public()); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	jwk := &jose.JSONWebKey{Key: key, Algorithm: string(alg), Use: "sig"}
	kid, err := jws.Thumbprint(jwk)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	jwk.KeyID = kid
	return jwk, nil
}

// Public returns the public half of k with the same alg, use and kid.
func Public(k *jose.JSONWebKey) *jose.JSONWebKey {
	pub := k.Public()
	return &pub
}

// Signer returns the private key of k as a crypto.Signer.
func Signer(k *jose.JSONWebKey) (crypto.Signer, error) {
	s, ok := k.Key.(crypto.Signer)
	if !ok || k.IsPublic() {
		return nil, errors.New("keyfile: not a private RSA or EC key")
	}
	return s, nil
}

// Parse reads a private key from a JWK (JSON) or a PEM block. A PEM key gets
// the default algorithm for its type and a thumbprint kid; a JWK keeps its
// own alg and kid, and gets a thumbprint kid if it has none.
func Parse(data []byte) (*jose.JSONWebKey, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		var k jose.JSONWebKey
		if err := json.Unmarshal([]byte(trimmed), &k); err != nil {
			return nil, fmt.Errorf("keyfile: JWK: %w", err)
		}
		if _, err := Signer(&k); err != nil {
			return nil, err
		}
		if err := jws.CheckPublicKey(k.Public().Key); err != nil {
			return nil, fmt.Errorf("keyfile: %w", err)
		}
		if k.Algorithm != "" {
			if err := jws.CheckKey(jose.SignatureAlgorithm(k.Algorithm), k.Public().Key); err != nil {
				return nil, fmt.Errorf("keyfile: %w", err)
			}
		}
		if k.KeyID == "" {
			kid, err := jws.Thumbprint(&k)
			if err != nil {
				return nil, fmt.Errorf("keyfile: %w", err)
			}
			k.KeyID = kid
		}
		return &k, nil
	}
	block, _ := pem.Decode([]byte(trimmed))
	if block == nil {
		return nil, errors.New("keyfile: neither a JWK nor a PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("keyfile: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("keyfile: PEM: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keyfile: unsupported key type %T", key)
	}
	return FromKey(signer, "")
}

// ReadFile reads a private key file (JWK or PEM) of at most 64 KiB; a key
// file is a few KiB.
func ReadFile(path string) (*jose.JSONWebKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("keyfile: %s is larger than %d bytes", path, maxFileSize)
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

// Marshal renders k as indented JSON.
func Marshal(k *jose.JSONWebKey) ([]byte, error) {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return append(b, '\n'), nil
}

// WritePrivate writes k to path readable only by its owner. It refuses to
// overwrite an existing file, so a key cannot be lost by a second run.
func WritePrivate(path string, k *jose.JSONWebKey) error {
	return write(path, k, 0o600)
}

// WritePublic writes the public half of k to path.
func WritePublic(path string, k *jose.JSONWebKey) error {
	return write(path, Public(k), 0o644)
}

func write(path string, k *jose.JSONWebKey, mode os.FileMode) error {
	b, err := Marshal(k)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("keyfile: %w", err)
	}
	return f.Close()
}
