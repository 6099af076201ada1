package main

import (
	"context"
	"io"

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
	return listRecords(ctx, args, stdout, stderr, store.IdentityProviderKind, listing{
		name: "idp list",
		help: []string{"Lists the identity providers in the store (declared in the configuration's",
			"identity_providers) with their type, display name and status."},
		header: "NAME\tTYPE\tDISPLAY NAME\tSTATUS\tSOURCE",
	}, func(p *store.IdentityProvider) []string {
		return []string{p.Name, string(p.Type), orDash(p.DisplayName), string(p.Status), source(p.ManagedBy, "store")}
	})
}
