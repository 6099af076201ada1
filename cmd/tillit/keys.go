package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/keyfile"
)

// keysCommands are the subcommands of "tillit keys".
func keysCommands() []command {
	return []command{
		{"generate", "make a client key pair (private and public JWK)", runKeysGenerate},
		{"rotate", "rotate the token service's signing key", runKeysRotate},
		{"list", "list the token service's signing keys", runKeysList},
	}
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "keys", keysCommands(), args, stdout, stderr)
}

// keyBits are the RSA sizes offered: NHN's tools make 2048 or 4096, and
// 3072 is the size HelseID's own signing key has.
var keyBits = []int{2048, 3072, 4096}

func runKeysGenerate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("keys generate", stderr)
	alg := fset.String("alg", string(jose.PS256), "signing algorithm: "+strings.Join(jws.AlgorithmNames(jws.Algorithms), ", "))
	bits := fset.Int("bits", 0, "RSA key size: 2048, 3072 or 4096 (default 2048; RS* and PS* only)")
	out := fset.String("out", "", "file to write the private JWK to (required; never overwritten)")
	pubOut := fset.String("pub-out", "", "file to write the public JWK to (default: --out with .pub before the extension)")
	setUsage(fset, "tillit keys generate [--alg ALG] [--bits N] --out FILE [--pub-out FILE]",
		"Writes a client's private JWK (mode 0600) and its public JWK, both with alg, use and",
		"kid (the RFC 7638 thumbprint), as HelseID's client libraries expect, and prints the",
		"public JWK to register for the client. Files are JWKs (JSON), never PEM.")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	a := jose.SignatureAlgorithm(*alg)
	switch {
	case fset.NArg() > 0:
		return badArgs(stderr, "keys generate", "unexpected argument %q", fset.Arg(0))
	case *out == "":
		return badArgs(stderr, "keys generate", "--out is required")
	case pemLike(*out):
		return badArgs(stderr, "keys generate", "--out %s: the key is written as a JWK (JSON), not PEM; name it .jwk", *out)
	case pemLike(*pubOut):
		return badArgs(stderr, "keys generate", "--pub-out %s: the key is written as a JWK (JSON), not PEM; name it .jwk", *pubOut)
	case !slices.Contains(jws.Algorithms, a):
		return badArgs(stderr, "keys generate", "--alg %q is not one of %s", *alg, strings.Join(jws.AlgorithmNames(jws.Algorithms), ", "))
	case *bits != 0 && strings.HasPrefix(*alg, "ES"):
		return badArgs(stderr, "keys generate", "--bits applies to RSA keys only; %s has a fixed curve", *alg)
	case *bits != 0 && !slices.Contains(keyBits, *bits):
		return badArgs(stderr, "keys generate", "--bits must be 2048, 3072 or 4096")
	}
	pub := *pubOut
	if pub == "" {
		pub = publicKeyPath(*out)
	}
	if filepath.Clean(pub) == filepath.Clean(*out) {
		return badArgs(stderr, "keys generate", "--pub-out must differ from --out")
	}
	// Check both before writing either, so that a refusal leaves nothing
	// behind.
	for _, p := range []string{*out, pub} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite a key", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}

	k, err := keyfile.Generate(a, *bits)
	if err != nil {
		return err
	}
	if err := keyfile.WritePrivate(*out, k); err != nil {
		return err
	}
	if err := keyfile.WritePublic(pub, k); err != nil {
		// The private file is ours (WritePrivate creates it exclusively); a
		// key whose public half was not written is of no use.
		os.Remove(*out)
		return err
	}
	b, err := keyfile.Marshal(keyfile.Public(k))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Private key: %s (keep it secret)\nPublic key:  %s (register it for the client)\n", *out, pub)
	_, err = stdout.Write(b)
	return err
}

// pemLike says whether a file name promises PEM or DER, which a JWK file
// would break for whoever opens it expecting that.
func pemLike(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".pem", ".key", ".crt", ".cer", ".der", ".p8", ".pkcs8":
		return true
	}
	return false
}

// publicKeyPath puts ".pub" before the extension: client.jwk becomes
// client.pub.jwk, client becomes client.pub.jwk.
func publicKeyPath(private string) string {
	ext := filepath.Ext(private)
	if ext == "" {
		return private + ".pub.jwk"
	}
	return strings.TrimSuffix(private, ext) + ".pub" + ext
}

// badArgs says why the arguments of cmd are wrong and returns errUsage,
// which run turns into exit status 2 without printing anything more.
func badArgs(stderr io.Writer, cmd, format string, args ...any) error {
	fmt.Fprintf(stderr, "tillit %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return errUsage
}
