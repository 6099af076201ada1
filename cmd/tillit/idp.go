package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tillit-sts/tillit/internal/store"
)

// Identity providers are declared in the configuration file; these
// commands show what the store the configuration names holds.
func idpCommands() []command {
	return []command{
		{"list", "list the identity providers", runIdPList},
	}
}

func runIdP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "idp", idpCommands(), args, stdout, stderr)
}

func runIdPList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idp list", stderr)
	sf := addStoreFlags(fs)
	setUsage(fs, "tillit idp list --config tillit.yaml | --dev",
		"Lists the identity providers in the store (declared in the configuration's",
		"identity_providers) with their type, display name and status.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	st, err := openRegistryStore(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := store.List(ctx, st, store.IdentityProviderKind)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tDISPLAY NAME\tSTATUS\tSOURCE")
	for _, p := range list {
		source := "store"
		if p.ManagedBy == store.ManagedByFile {
			source = "file"
		}
		display := p.DisplayName
		if display == "" {
			display = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, display, p.Status, source)
	}
	return tw.Flush()
}
