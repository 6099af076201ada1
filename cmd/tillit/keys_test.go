package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/keyfile"
)

// runCLI runs tillit in-process with args and returns the exit status and
// what it wrote.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeysGenerate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantAlg  string
		wantBits int
	}{
		{name: "default is PS256 with 2048 bits", wantAlg: "PS256", wantBits: 2048},
		{name: "RS256 3072", args: []string{"--alg", "RS256", "--bits", "3072"}, wantAlg: "RS256", wantBits: 3072},
		{name: "ES256", args: []string{"--alg", "ES256"}, wantAlg: "ES256"},
		{name: "ES512", args: []string{"--alg", "ES512"}, wantAlg: "ES512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			priv := filepath.Join(dir, "client.jwk")
			args := append([]string{"keys", "generate", "--out", priv}, tt.args...)
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			pubPath := filepath.Join(dir, "client.pub.jwk")
			if !strings.Contains(stderr, priv) || !strings.Contains(stderr, pubPath) {
				t.Errorf("stderr does not say where the keys are: %s", stderr)
			}

			fi, err := os.Stat(priv)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("private key mode %v", fi.Mode().Perm())
			}
			k, err := keyfile.ReadFile(priv)
			if err != nil {
				t.Fatal(err)
			}
			jkt, _ := jws.Thumbprint(k)
			if k.Algorithm != tt.wantAlg || k.Use != "sig" || k.KeyID != jkt {
				t.Errorf("alg %q use %q kid %q (thumbprint %q)", k.Algorithm, k.Use, k.KeyID, jkt)
			}
			if tt.wantBits != 0 {
				if bits := k.Public().Key.(interface{ Size() int }).Size() * 8; bits != tt.wantBits {
					t.Errorf("%d bits, want %d", bits, tt.wantBits)
				}
			}

			// stdout is the public JWK, the same as the public file, and
			// holds nothing private.
			pubFile, err := os.ReadFile(pubPath)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != string(pubFile) {
				t.Errorf("stdout differs from %s:\n%s\n%s", pubPath, stdout, pubFile)
			}
			var members map[string]any
			if err := json.Unmarshal([]byte(stdout), &members); err != nil {
				t.Fatal(err)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := members[private]; ok {
					t.Fatalf("public JWK has private member %q", private)
				}
			}
			var pub jose.JSONWebKey
			if err := pub.UnmarshalJSON(pubFile); err != nil {
				t.Fatal(err)
			}
			if !pub.IsPublic() || pub.Algorithm != tt.wantAlg || pub.KeyID != k.KeyID || pub.Use != "sig" {
				t.Fatalf("public JWK alg %q kid %q use %q", pub.Algorithm, pub.KeyID, pub.Use)
			}

			// Round trip: the private file signs a client assertion that
			// the registered public key verifies.
			now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
			c, err := client.New(client.Config{Issuer: "https://sts.example", ClientID: "c1", Key: k, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			a, err := c.ClientAssertion()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tt.wantAlg)})
			if err != nil {
				t.Fatal(err)
			}
			var claims jwt.Claims
			if err := tok.Claims(pub.Key, &claims); err != nil {
				t.Fatalf("the public file does not verify what the private file signs: %v", err)
			}
			if tok.Headers[0].KeyID != pub.KeyID {
				t.Fatalf("assertion kid %q, public key kid %q", tok.Headers[0].KeyID, pub.KeyID)
			}
		})
	}
}

func TestKeysGenerateRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "client.jwk")
	if code, _, stderr := runCLI(t, "keys", "generate", "--alg", "ES256", "--out", priv); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	before, _ := os.ReadFile(priv)
	code, stdout, stderr := runCLI(t, "keys", "generate", "--alg", "ES256", "--out", priv)
	if code != 1 || stderr != "tillit keys: "+priv+" exists; refusing to overwrite a key\n" || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	after, _ := os.ReadFile(priv)
	if !bytes.Equal(before, after) {
		t.Fatal("the private key was overwritten")
	}

	// Only the public file exists: nothing is written at all.
	dir = t.TempDir()
	priv = filepath.Join(dir, "other.jwk")
	pub := filepath.Join(dir, "other.pub.jwk")
	if err := os.WriteFile(pub, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "keys", "generate", "--alg", "ES256", "--out", priv)
	if code != 1 || !strings.Contains(stderr, pub+" exists") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(priv); !os.IsNotExist(err) {
		t.Fatalf("a private key was written next to a public file it does not match: %v", err)
	}
}

func TestKeysGeneratePubOut(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "a", "key"), filepath.Join(dir, "b", "registered.json")
	code, _, stderr := runCLI(t, "keys", "generate", "--alg", "ES384", "--out", priv, "--pub-out", pub)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, p := range []string{priv, pub} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPublicKeyPath(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"jwk extension", "client.jwk", "client.pub.jwk"},
		{"json extension", "dir/client.json", "dir/client.pub.json"},
		{"no extension", "client", "client.pub.jwk"},
		{"dot in directory", "my.keys/client", "my.keys/client.pub.jwk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := publicKeyPath(tt.in); got != tt.want {
				t.Fatalf("publicKeyPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestKeysArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "k.jwk")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // a line stderr must contain
	}{
		{name: "no subcommand", args: []string{"keys"}, wantCode: 2, wantStderr: "Usage: tillit keys <subcommand>"},
		{name: "unknown subcommand", args: []string{"keys", "make"}, wantCode: 2, wantStderr: `tillit keys: unknown subcommand "make"`},
		{name: "no --out", args: []string{"keys", "generate"}, wantCode: 2, wantStderr: "tillit keys generate: --out is required"},
		{name: "symmetric alg", args: []string{"keys", "generate", "--alg", "HS256", "--out", out}, wantCode: 2, wantStderr: `tillit keys generate: --alg "HS256" is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512`},
		{name: "alg none", args: []string{"keys", "generate", "--alg", "none", "--out", out}, wantCode: 2, wantStderr: `--alg "none" is not one of`},
		{name: "lower-case alg", args: []string{"keys", "generate", "--alg", "es256", "--out", out}, wantCode: 2, wantStderr: `--alg "es256" is not one of`},
		{name: "bits for EC", args: []string{"keys", "generate", "--alg", "ES256", "--bits", "2048", "--out", out}, wantCode: 2, wantStderr: "tillit keys generate: --bits applies to RSA keys only; ES256 has a fixed curve"},
		{name: "weak RSA", args: []string{"keys", "generate", "--bits", "1024", "--out", out}, wantCode: 2, wantStderr: "tillit keys generate: --bits must be 2048, 3072 or 4096"},
		{name: "odd RSA size", args: []string{"keys", "generate", "--bits", "2049", "--out", out}, wantCode: 2, wantStderr: "tillit keys generate: --bits must be 2048, 3072 or 4096"},
		{name: "bits not a number", args: []string{"keys", "generate", "--bits", "big", "--out", out}, wantCode: 2, wantStderr: `invalid value "big" for flag -bits`},
		{name: "extra argument", args: []string{"keys", "generate", "--out", out, "extra"}, wantCode: 2, wantStderr: `tillit keys generate: unexpected argument "extra"`},
		{name: "PEM name for a JWK", args: []string{"keys", "generate", "--out", filepath.Join(filepath.Dir(out), "k.pem")}, wantCode: 2, wantStderr: "k.pem: the key is written as a JWK (JSON), not PEM; name it .jwk"},
		{name: "PEM name for the public JWK", args: []string{"keys", "generate", "--out", out, "--pub-out", filepath.Join(filepath.Dir(out), "k.pub.PEM")}, wantCode: 2, wantStderr: "--pub-out"},
		{name: "same file twice", args: []string{"keys", "generate", "--alg", "ES256", "--out", out, "--pub-out", out}, wantCode: 2, wantStderr: "tillit keys generate: --pub-out must differ from --out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			if stdout != "" {
				t.Fatalf("stdout %q", stdout)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatal("a key was written")
			}
		})
	}
}
