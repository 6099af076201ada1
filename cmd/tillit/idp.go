package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
)

// Identity providers are declared in the configuration file; these
// commands show what the store the configuration names holds, and manage
// the keys Tillit authenticates with at upstream providers.
func idpCommands() []command {
	return []command{
		{"list", "list the identity providers", runIdPList},
		{"jwks", "print the public key set to register at an upstream provider", runIdPJWKS},
		{"rotate-key", "make a new private_key_jwt key for an upstream provider", runIdPRotateKey},
	}
}

func runIdP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "idp", idpCommands(), args, stdout, stderr)
}

func runIdPList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listRecords(ctx, args, stdout, stderr, store.IdentityProviderKind, listing{
		name: "idp list",
		help: []string{"Lists the identity providers in the store (declared in the configuration's",
			"identity_providers) with their type, display name and status, and for an upstream",
			"OpenID Connect provider its issuer, Tillit's client id there and how Tillit",
			"authenticates (private_key_jwt with its own key, or client_secret_post)."},
		header: "NAME\tTYPE\tDISPLAY NAME\tSTATUS\tSOURCE\tISSUER\tCLIENT ID\tAUTH",
	}, func(p *store.IdentityProvider) []string {
		issuer, clientID, auth := "-", "-", "-"
		if u := p.OIDC; u != nil {
			issuer, clientID, auth = u.Issuer, orDash(u.ClientID), u.ClientAuth()
		}
		return []string{p.Name, string(p.Type), orDash(p.DisplayName), string(p.Status), source(p.ManagedBy, "store"), issuer, clientID, auth}
	})
}

// nameAndFlags parses args that name one identity provider, before or
// after the flags.
func nameAndFlags(fs *flag.FlagSet, args []string) (string, error) {
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", badArgs(fs.Output(), strings.TrimPrefix(fs.Name(), "tillit "), "name the identity provider")
	}
	name := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", unexpectedArg(fs)
	}
	return name, nil
}

// keyProvider reads an identity provider that authenticates with
// private_key_jwt.
func keyProvider(ctx context.Context, st store.Store, name string) (*store.IdentityProvider, error) {
	p, err := store.Get(ctx, st, store.IdentityProviderKind, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("there is no identity provider %q", name)
	}
	if err != nil {
		return nil, err
	}
	if p.OIDC == nil || p.OIDC.ClientAuth() != store.UpstreamAuthPrivateKeyJWT {
		return nil, fmt.Errorf("identity provider %q does not authenticate with private_key_jwt (auth: private_key_jwt in its configuration)", name)
	}
	return &p, nil
}

// runIdPJWKS prints the public keys of a provider's private_key_jwt keys.
// They are stored in clear, so no key-encryption key is needed.
func runIdPJWKS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idp jwks", stderr)
	sf := addStoreFlags(fs)
	setUsage(fs, "tillit idp jwks NAME --config tillit.yaml | --dev",
		"Prints the JWKS to register at the upstream identity provider NAME (for ID-porten,",
		"in its self-service as the client's keys): the public halves of the keys Tillit signs",
		"its private_key_jwt client assertions with there. The first server start makes the",
		"key; after 'tillit idp rotate-key' the set has the new key beside the one that signs",
		"now. Reads public records only: no key-encryption key is needed.")
	name, err := nameAndFlags(fs, args)
	if err != nil {
		return err
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	st, err := server.Open(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := keyProvider(ctx, st, name); err != nil {
		return err
	}
	set, err := keys.UpstreamJWKS(ctx, st, name, time.Now())
	if err != nil {
		return err
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("identity provider %q has no key yet: the first server start makes it (or run 'tillit idp rotate-key %s')", name, name)
	}
	return printJSON(stdout, set)
}

// runIdPRotateKey makes a provider's next private_key_jwt key.
func runIdPRotateKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idp rotate-key", stderr)
	sf := addStoreFlags(fs)
	after := fs.Duration("after", 24*time.Hour, "how long after now the new key starts to sign: the time to register it at the provider")
	alg := fs.String("alg", "", "algorithm of the new key: RS256, PS256 or ES256 (default: the provider's algorithm setting)")
	setUsage(fs, "tillit idp rotate-key NAME --config tillit.yaml | --dev [--after 24h] [--alg ALG]",
		"Makes a new key for Tillit's private_key_jwt client assertions at the upstream",
		"identity provider NAME, sealed in the store, and prints the JWKS with it and the key",
		"that signs now. Register that set at the provider before --after has passed: the",
		"new key signs from then on, and a provider that does not know it refuses Tillit's",
		"logins. Once the new key signs, the old one may be removed at the provider; the",
		"next rotation deletes it here. Needs the key-encryption key. Safe while servers run:",
		"they read the key at every login.")
	name, err := nameAndFlags(fs, args)
	if err != nil {
		return err
	}
	if *after < 0 {
		return badArgs(stderr, "idp rotate-key", "--after must not be negative")
	}
	if a := jose.SignatureAlgorithm(*alg); a != "" && !slices.Contains(keys.UpstreamAlgorithms, a) {
		return badArgs(stderr, "idp rotate-key", "--alg %q is not RS256, PS256 or ES256", *alg)
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	m, st, err := openKeys(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := keyProvider(ctx, st, name)
	if err != nil {
		return err
	}
	a := jose.SignatureAlgorithm(*alg)
	if a == "" {
		a = jose.SignatureAlgorithm(p.OIDC.Algorithm)
	}
	k, err := m.RotateUpstreamKey(ctx, name, a, *after)
	if err != nil {
		return err
	}
	set, err := keys.UpstreamJWKS(ctx, st, name, time.Now())
	if err != nil {
		return err
	}
	if k.Status == keys.UpstreamSigning {
		fmt.Fprintf(stderr, "Key %s (%s) for %s signs now. Register this key set at the provider:\n", k.ID, k.Algorithm, name)
	} else {
		fmt.Fprintf(stderr, "New key %s (%s) for %s signs from %s. Register this key set at the provider before then:\n",
			k.ID, k.Algorithm, name, k.ActiveFrom.UTC().Format(time.RFC3339))
	}
	return printJSON(stdout, set)
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
