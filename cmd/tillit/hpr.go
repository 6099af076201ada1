package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
)

// The HPR register (Helsepersonellregisteret) stand-in: these commands
// change it in the store the configuration names, safely while serve
// runs. What they create is not file-managed.
func hprCommands() []command {
	return []command{
		{"add", "add a health professional's HPR entry", runHPRAdd},
		{"list", "list the HPR entries", runHPRList},
		{"remove", "delete an HPR entry made with add", runHPRRemove},
	}
}

func runHPR(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "hpr", hprCommands(), args, stdout, stderr)
}

var (
	hprNumberRE  = regexp.MustCompile(`^[1-9][0-9]{0,8}$`)
	professionRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// codeList collects repeated VALUE=DESCRIPTION flags.
type codeList []store.HPRCode

func (l *codeList) String() string { return fmt.Sprint(*l) }

func (l *codeList) Set(s string) error {
	value, description, _ := strings.Cut(s, "=")
	if value = strings.TrimSpace(value); value == "" {
		return errors.New("want VALUE=DESCRIPTION")
	}
	*l = append(*l, store.HPRCode{Value: value, Description: strings.TrimSpace(description)})
	return nil
}

func runHPRAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hpr add", stderr)
	sf := addStoreFlags(fs)
	number := fs.String("number", "", "the HPR number: up to nine digits (required)")
	pid := fs.String("pid", "", "the person's national identity number (required)")
	var professions stringList
	var specialities, rights codeList
	fs.Var(&professions, "profession", "a profession code, such as LE (lege) or SP (sykepleier); may be repeated or comma-separated (at least one)")
	fs.Var(&specialities, "speciality", "a speciality of the first profession, as VALUE=DESCRIPTION; may be repeated")
	fs.Var(&rights, "requisition-right", "a requisition right of the first profession, as VALUE=DESCRIPTION; may be repeated")
	setUsage(fs, "tillit hpr add --config tillit.yaml | --dev --number N --pid PID --profession LE [--speciality V=D]...",
		"Records a health professional: logins with the pid get the HPR number, and",
		"userinfo the approvals. Each profession is authorised (1 Autorisasjon). "+appliedWithin)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "tillit hpr add: "+format+"\n", a...)
		return errUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if !hprNumberRE.MatchString(*number) {
		return usage("--number %q is not an HPR number (up to nine digits, the first not 0)", *number)
	}
	p, err := helseid.ParsePID(*pid)
	if err != nil {
		return usage("--pid %q is not a national identity number (11 digits: a date of birth, an individual number and two check digits)", *pid)
	}
	if len(professions) == 0 {
		return usage("--profession is required")
	}
	for _, prof := range professions {
		if !professionRE.MatchString(prof) {
			return usage("--profession %q is not a profession code (two capital letters, such as LE or SP)", prof)
		}
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	if p.Synthetic && !cfg.Test() {
		return fmt.Errorf("pid %s is a synthetic test number, allowed only with environment: test", *pid)
	}
	st, err := server.Open(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := store.List(ctx, st, store.HealthPersonnelKind)
	if err != nil {
		return err
	}
	for _, h := range list {
		if h.PID == *pid {
			return fmt.Errorf("pid %s already has the HPR entry %s", *pid, h.Number)
		}
	}
	h := store.HealthPersonnel{Number: *number, PID: *pid, Status: store.StatusActive}
	for i, prof := range professions {
		a := store.HPRApproval{Profession: prof, Authorization: store.HPRCode{Value: "1", Description: "Autorisasjon"}}
		if i == 0 {
			a.Specialities, a.RequisitionRights = specialities, rights
		}
		h.Approvals = append(h.Approvals, a)
	}
	if _, err := store.Create(ctx, st, store.HealthPersonnelKind, h); errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("HPR number %s already exists; remove it first to change it", h.Number)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "HPR number %s (%s) now belongs to pid %s.\n%s\n", h.Number, strings.Join(professions, ", "), h.PID, appliedWithin)
	return nil
}

func runHPRList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listRecords(ctx, args, stdout, stderr, store.HealthPersonnelKind, listing{
		name: "hpr list",
		help: []string{"Lists the HPR entries in the store: from the configuration file (SOURCE file) and",
			"made with 'tillit hpr add' (SOURCE cli), with their professions and specialities."},
		header: "NUMBER\tPID\tPROFESSIONS\tSPECIALITIES\tSTATUS\tSOURCE",
	}, func(h *store.HealthPersonnel) []string {
		var profs, specs []string
		for _, a := range h.Approvals {
			profs = append(profs, a.Profession)
			for _, s := range a.Specialities {
				specs = append(specs, s.Description)
			}
		}
		return []string{h.Number, h.PID, orDash(strings.Join(profs, ",")), orDash(strings.Join(specs, ", ")), string(h.Status), source(h.ManagedBy, "cli")}
	})
}

func runHPRRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hpr remove", stderr)
	sf := addStoreFlags(fs)
	number := fs.String("number", "", "the HPR number (required)")
	setUsage(fs, "tillit hpr remove --config tillit.yaml | --dev --number N",
		"Deletes an HPR entry made with 'tillit hpr add'. One declared in the configuration",
		"file is removed there instead. "+appliedWithin)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	if *number == "" {
		fmt.Fprintln(stderr, "tillit hpr remove: --number is required")
		return errUsage
	}
	st, err := openRegistryStore(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := store.Get(ctx, st, store.HealthPersonnelKind, *number)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("there is no HPR entry %s", *number)
	case err != nil:
		return err
	case h.ManagedBy == store.ManagedByFile:
		// The file would create it again at the next start.
		return fmt.Errorf("HPR entry %s is declared in the configuration: remove it there", *number)
	}
	if err := store.Delete(ctx, st, store.HealthPersonnelKind, *number); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "HPR entry %s is removed.\n%s\n", *number, appliedWithin)
	return nil
}
