package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tillit-sts/tillit/internal/keys"
)

// runKeysRotate publishes a new signing key. Without --now it signs after
// the publication lead (keys.publish_lead, default 24 h), so that every API
// has it in its cached JWKS before it meets a token signed with it.
func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rotate", stderr)
	sf := addStoreFlags(fs)
	now := fs.Bool("now", false, "sign with the new key at once (APIs that cached the JWKS may refuse its tokens until they fetch it again)")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	fmt.Fprintln(stdout, "Running servers pick it up within a minute.")
	fmt.Fprintln(stdout)
	printKeys(stdout, m.List())
	return nil
}

// runKeysList shows the signing keys and where each is in its life.
func runKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys list", stderr)
	sf := addStoreFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
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
	printKeys(stdout, m.List())
	return nil
}

func printKeys(w io.Writer, list []keys.KeyInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GEN\tKID\tALG\tSTATUS\tSIGNS FROM")
	for _, k := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", k.Generation, k.ID, k.Algorithm, k.Status, k.ActiveFrom.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}
