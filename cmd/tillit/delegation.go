package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
)

// The delegation registry is the stand-in for Altinn (HelseID profile
// §6.1): these commands change it in the store the configuration names,
// safely while serve runs. What they create is not file-managed: the file
// never touches it, and cannot declare it.
func delegationCommands() []command {
	return []command{
		{"add", "record that an organisation delegates to a supplier", runDelegationAdd},
		{"list", "list the delegations", runDelegationList},
		{"remove", "delete a delegation made with add", runDelegationRemove},
	}
}

func runDelegation(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "delegation", delegationCommands(), args, stdout, stderr)
}

// stringList collects a repeated flag; each value may also be a
// comma-separated list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// pairFlags are the two organisation numbers that name a delegation.
type pairFlags struct {
	organization, supplier *string
}

func addPairFlags(fs interface {
	String(name, value, usage string) *string
}) pairFlags {
	return pairFlags{
		organization: fs.String("organisation", "", "the delegating organisation's number (required)"),
		supplier:     fs.String("supplier", "", "the supplier's organisation number: the supplier of the multi-tenant client's client system (required)"),
	}
}

// check reports a missing or invalid number as a usage error.
func (p pairFlags) check(name string, stderr io.Writer) error {
	for _, f := range []struct{ flag, value string }{{"--organisation", *p.organization}, {"--supplier", *p.supplier}} {
		switch {
		case f.value == "":
			fmt.Fprintf(stderr, "tillit delegation %s: %s is required\n", name, f.flag)
			return errUsage
		case !helseid.ValidOrgNumber(f.value):
			fmt.Fprintf(stderr, "tillit delegation %s: %s %q is not a valid organisation number (nine digits, the last a mod-11 check digit)\n", name, f.flag, f.value)
			return errUsage
		}
	}
	return nil
}

// openRegistryStore opens the store the flags' configuration names.
func openRegistryStore(ctx context.Context, sf *storeFlags) (store.Store, error) {
	cfg, err := sf.load()
	if err != nil {
		return nil, err
	}
	return server.Open(ctx, cfg.Storage)
}

const appliedWithin = "Running servers apply it within registry_poll (default 2s)."

func runDelegationAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("delegation add", stderr)
	sf := addStoreFlags(fs)
	pair := addPairFlags(fs)
	var apis stringList
	fs.Var(&apis, "api", "an API audience whose terms of use the organisation has accepted; may be repeated or comma-separated")
	setUsage(fs, "tillit delegation add --config tillit.yaml | --dev --organisation N --supplier N [--api AUDIENCE]...",
		"Records that the organisation lets the supplier's multi-tenant clients act for it",
		"(the Altinn right \"Databehandler kan opptre på vegne av min virksomhet i HelseID\").",
		"Its tokens carry only scopes of the APIs named with --api. "+appliedWithin)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	if err := pair.check("add", stderr); err != nil {
		return err
	}
	st, err := openRegistryStore(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	seen := map[string]bool{}
	for _, aud := range apis {
		if seen[aud] {
			return fmt.Errorf("api %q is named twice", aud)
		}
		seen[aud] = true
		if _, err := store.Get(ctx, st, store.APIKind, aud); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("api %q is not registered", aud)
		} else if err != nil {
			return err
		}
	}
	d := store.Delegation{Organization: *pair.organization, Supplier: *pair.supplier, AcceptedAPIs: apis, Status: store.StatusActive}
	if _, err := store.Create(ctx, st, store.DelegationKind, d); errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("a delegation from %s to %s already exists; remove it first to change it", d.Organization, d.Supplier)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Organisation %s now delegates to supplier %s", d.Organization, d.Supplier)
	if len(apis) > 0 {
		fmt.Fprintf(stdout, ", with the terms of %s accepted", strings.Join(apis, ", "))
	} else {
		fmt.Fprint(stdout, ", with the terms of no API accepted (its tokens carry no API scope)")
	}
	fmt.Fprintln(stdout, ".")
	fmt.Fprintln(stdout, appliedWithin)
	return nil
}

func runDelegationList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listRecords(ctx, args, stdout, stderr, store.DelegationKind, listing{
		name: "delegation list",
		help: []string{"Lists the delegations in the store: from the configuration file (SOURCE file) and",
			"made with 'tillit delegation add' (SOURCE cli), with the APIs whose terms each",
			"organisation accepted."},
		header: "ORGANISATION\tSUPPLIER\tAPIS\tSTATUS\tSOURCE",
	}, func(d *store.Delegation) []string {
		status := "active"
		if !d.Active() {
			status = string(d.Status)
		}
		return []string{d.Organization, d.Supplier, orDash(strings.Join(d.AcceptedAPIs, ",")), status, source(d.ManagedBy, "cli")}
	})
}

func runDelegationRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("delegation remove", stderr)
	sf := addStoreFlags(fs)
	pair := addPairFlags(fs)
	setUsage(fs, "tillit delegation remove --config tillit.yaml | --dev --organisation N --supplier N",
		"Deletes a delegation made with 'tillit delegation add'. One declared in the",
		"configuration file is removed there instead. "+appliedWithin)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	if err := pair.check("remove", stderr); err != nil {
		return err
	}
	st, err := openRegistryStore(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	org, supplier := *pair.organization, *pair.supplier
	d, err := store.Get(ctx, st, store.DelegationKind, store.DelegationKey(org, supplier))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("there is no delegation from %s to %s", org, supplier)
	case err != nil:
		return err
	case d.ManagedBy == store.ManagedByFile:
		// The file would create it again at the next start; removing it
		// from the file disables it instead.
		return fmt.Errorf("the delegation from %s to %s is declared in the configuration file: remove it there", org, supplier)
	}
	if err := store.Delete(ctx, st, store.DelegationKind, store.DelegationKey(org, supplier)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "The delegation from %s to %s is removed.\n%s\n", org, supplier, appliedWithin)
	return nil
}
