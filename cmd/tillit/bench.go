package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/tillit-sts/tillit/internal/loadtest"
	"github.com/tillit-sts/tillit/keyfile"
)

// benchCommands are the subcommands of "tillit bench".
func benchCommands() []command {
	return []command{
		{"token", "drive a token endpoint as many HelseID clients at once", runBenchToken},
	}
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "bench", benchCommands(), args, stdout, stderr)
}

// errNoTokens makes a run in which nothing was issued fail, after its
// figures (the error counts) have been printed.
var errNoTokens = errors.New("no token was issued")

func runBenchToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("bench token", stderr)
	issuer := fset.String("issuer", "", "issuer URL of the token service; the token endpoint comes from its discovery document (required)")
	clientID := fset.String("client-id", "", "client ID (required)")
	keyPath := fset.String("key", "", "the client's private key, a JWK with alg or a PEM file (required); it also signs the DPoP proofs")
	var scopes scopeFlag
	fset.Var(&scopes, "scope", "scope to ask for; repeat the flag or separate scopes with spaces")
	resource := fset.String("resource", "", "resource indicator: the audience of the API the tokens are for")
	var concurrency int
	fset.IntVar(&concurrency, "concurrency", loadtest.DefaultConcurrency, "number of clients, each with one request in flight on its own keep-alive connection")
	fset.IntVar(&concurrency, "c", loadtest.DefaultConcurrency, "short for --concurrency")
	var duration time.Duration
	fset.DurationVar(&duration, "duration", loadtest.DefaultDuration, "measured time")
	rate := fset.Float64("rate", 0, "pace the clients: tokens per second they start together, evenly spread (0: each as fast as the server answers)")
	warmup := fset.Duration("warmup", 2*time.Second, "time before the measurement that is not counted (connections, nonces, caches, JIT)")
	timeout := fset.Duration("timeout", loadtest.DefaultTimeout, "limit on each HTTP request")
	bearer := fset.Bool("bearer", false, "ask for Bearer tokens: send no DPoP proof")
	freshNonce := fset.Bool("fresh-nonce", false, "never reuse a DPoP nonce, as NHN's libraries do: every token costs the use_dpop_nonce round trip")
	connect := fset.String("connect", "", connectHelp)
	serverPID := fset.Int("server-pid", 0, "PID of the server process, to report its CPU time per token (from /proc/PID/stat)")
	asJSON := fset.Bool("json", false, "print the result as JSON")
	jsonOut := fset.String("json-out", "", "also write the result as JSON to this file, for scripts that print the text")
	setUsage(fset, "tillit bench token --issuer URL --client-id ID --key FILE [--scope S ...] [--resource R]\n                          [-c N] [--rate TOKENS/S] [--duration D] [--warmup DURATION] [--bearer | --fresh-nonce]\n                          [--connect HOST:PORT] [--server-pid PID] [--json] [--json-out FILE]",
		"Drives the token endpoint with N concurrent clients. Every token request has a new",
		"client assertion and a new DPoP proof; the server's last DPoP-Nonce is kept and the",
		"use_dpop_nonce round trip made when the server asks. With --rate the clients keep a",
		"steady pace instead of going as fast as the server answers. Prints tokens/s, latency per",
		"token, errors by OAuth error code, nonce round trips, and CPU per token of this",
		"load generator, of the server (--server-pid) and of the whole machine.")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	switch {
	case fset.NArg() > 0:
		return badArgs(stderr, "bench token", "unexpected argument %q", fset.Arg(0))
	case *issuer == "" || *clientID == "" || *keyPath == "":
		return badArgs(stderr, "bench token", "--issuer, --client-id and --key are required")
	case concurrency < 1 || concurrency > loadtest.MaxConcurrency:
		return badArgs(stderr, "bench token", "--concurrency must be between 1 and %d", loadtest.MaxConcurrency)
	case duration <= 0:
		return badArgs(stderr, "bench token", "--duration must be positive")
	case *warmup < 0:
		return badArgs(stderr, "bench token", "--warmup must not be negative")
	case *timeout <= 0:
		return badArgs(stderr, "bench token", "--timeout must be positive")
	case *rate < 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0):
		return badArgs(stderr, "bench token", "--rate must be a positive number of tokens per second, or 0")
	case *serverPID < 0:
		return badArgs(stderr, "bench token", "--server-pid must be a process ID")
	case *bearer && *freshNonce:
		return badArgs(stderr, "bench token", "--fresh-nonce is about DPoP nonces; --bearer sends no DPoP proof")
	}
	if err := checkConnect(*connect); err != nil {
		return badArgs(stderr, "bench token", "%v", err)
	}
	key, err := keyfile.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	against := *issuer
	if *connect != "" {
		against += ", connecting to " + *connect
	}
	fmt.Fprintf(stderr, "tillit bench token: %d clients, %v warm-up and %v measured, against %s\n", concurrency, *warmup, duration, against)
	res, err := loadtest.Run(ctx, loadtest.Config{
		Issuer:      *issuer,
		ClientID:    *clientID,
		Key:         key,
		Scopes:      scopes,
		Resource:    *resource,
		Concurrency: concurrency,
		Rate:        *rate,
		Duration:    duration,
		Warmup:      *warmup,
		Timeout:     *timeout,
		Bearer:      *bearer,
		FreshNonce:  *freshNonce,
		ServerPID:   *serverPID,
		Connect:     *connect,
	})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *jsonOut != "" {
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		_, err = stdout.Write(b)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if res.Tokens == 0 {
		return errNoTokens
	}
	return nil
}
