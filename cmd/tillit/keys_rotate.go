package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/server"
)

// runKeysRotate publishes a new signing key. Without --now it signs after
// the publication lead (keys.publish_lead, default 24 h), so that every API
// has it in its cached JWKS before it meets a token signed with it.
func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rotate", stderr)
	sf := addStoreFlags(fs)
	now := fs.Bool("now", false, "sign with the new key at once (APIs that cached the JWKS may refuse its tokens until they fetch it again)")
	setUsage(fs, "tillit keys rotate --config tillit.yaml | --dev [--now]",
		"Makes a new signing key (and one for each ID-token algorithm the access-token",
		"key does not cover) and publishes it in the JWKS at once. It signs after",
		"keys.publish_lead (default 24h), so that APIs caching the JWKS know it first; with",
		"--now it signs at once. The old key stays published until the tokens it signed",
		"expire. Needs the key-encryption key, which seals the new key in the store. Safe",
		"while servers run: they load the new key within registry_poll (default 2s).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
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
	k, err := m.Rotate(ctx, *now)
	if err != nil {
		return err
	}
	if *now {
		fmt.Fprintf(stdout, "New signing key %s signs now. APIs that cached the JWKS may refuse its tokens until they fetch it again.\n", k.ID)
	} else {
		fmt.Fprintf(stdout, "New signing key %s is published and signs from %s.\n", k.ID, k.ActiveFrom.UTC().Format(time.RFC3339))
	}
	// Servers reload keys every registry_poll (the "key reload" job).
	fmt.Fprintln(stdout, "Running servers load it within registry_poll (default 2s).")
	fmt.Fprintln(stdout)
	printKeys(stdout, m.List())
	return nil
}

// runKeysList shows the signing keys and where each is in its life. It
// reads only the keys' public records, so it needs no key-encryption key.
func runKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys list", stderr)
	sf := addStoreFlags(fs)
	setUsage(fs, "tillit keys list --config tillit.yaml | --dev",
		"Lists the token service's signing keys, oldest first (the access-token keys, then",
		"each ID-token algorithm's), with where each is in its life: next (published, not",
		"signing yet), active (signing), retired (published until the tokens it signed",
		"expire) or expired (only at expired_jwks_uri). Reads public records only: no",
		"key-encryption key is needed.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
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
	list, err := keys.ListStored(ctx, st, server.KeysConfig(cfg), nil)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No signing keys yet: the first server start creates them.")
		return nil
	}
	printKeys(stdout, list)
	return nil
}

func printKeys(w io.Writer, list []keys.KeyInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GEN\tKID\tALG\tSIGNS\tSTATUS\tSIGNS FROM\tNOTE")
	for _, k := range list {
		signs := "access+ID tokens"
		if k.IDOnly {
			signs = "ID tokens"
		}
		note := "-"
		switch {
		case k.NeverSigned:
			note = "never signed: a later key (keys rotate --now) took over before its start"
		case k.Status == keys.StatusNext:
			note = "published; not signing yet"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Generation, k.ID, k.Algorithm, signs, k.Status, k.ActiveFrom.UTC().Format(time.RFC3339), note)
	}
	tw.Flush()
}
