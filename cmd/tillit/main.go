// Command tillit is the Tillit security token service and its tools: run the
// server, make keys, get and decode tokens, call APIs, drive load.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tillit-sts/tillit/internal/config"
)

// command is one subcommand. run gets the arguments after the command name
// and writes its normal output to stdout.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand in the order of the help text. Each lives
// in its own file.
func commands() []command {
	return []command{
		{"serve", "run the token service", runServe},
		{"migrate", "apply the store's schema migrations", runMigrate},
		{"health", "ask a running server whether it is ready (for container health checks)", runHealth},
		{"keys", "make client keys; rotate and list the signing keys", runKeys},
		{"delegation", "add, list and remove delegations to multi-tenant suppliers", runDelegation},
		{"idp", "list the identity providers", runIdP},
		{"hpr", "add, list and remove health personnel (the HPR stand-in)", runHPR},
		{"audit", "verify, reseal, tail and query the audit log", runAudit},
		{"token", "get an access token as a client", runToken},
		{"call", "call an API as a client, with a DPoP-bound token", runCall},
		{"login", "log a person in with the authorization code flow and print the tokens", runLogin},
		{"decode", "print the header and claims of a JWT, unverified", runDecode},
		{"bench", "measure a token endpoint under load", runBench},
		{"version", "print the version, commit and Go version", runVersion},
	}
}

// errUsage means the arguments were wrong; the command has already said why.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command args name and returns the exit status: 0 done
// (help included), 1 failed, 2 wrong arguments.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		// tillit help keys rotate is tillit keys rotate --help.
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		args = append(slices.Clone(args[1:]), "--help")
	case "-version", "--version":
		args = []string{"version"}
	}
	// Help asked for is the output, not a complaint: it goes to stdout.
	if helpRequested(args[1:]) {
		stderr = stdout
	}
	c, ok := find(commands(), args[0])
	if !ok {
		unknown(stderr, "tillit", "command", args[0], commands())
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "tillit %s: %v\n", c.name, err)
	return 1
}

// helpRequested says whether the flags in args ask for help.
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func find(cmds []command, name string) (command, bool) {
	for _, c := range cmds {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// unknown says that name is not one of cmds, with the closest if one is
// close, and where the list is.
func unknown(w io.Writer, prefix, what, name string, cmds []command) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	fmt.Fprintf(w, "%s: unknown %s %q", prefix, what, name)
	if s := config.Suggest(name, names); s != "" {
		fmt.Fprintf(w, " (did you mean %q?)", s)
	}
	fmt.Fprintf(w, "\nRun '%s --help' for the list.\n", prefix)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tillit <command> [subcommand] [flags]")
	fmt.Fprintln(w, "\nTillit is a security token service with HelseID's profile: private_key_jwt client")
	fmt.Fprintln(w, "assertions, DPoP-bound access tokens, token exchange and a tamper-evident audit log.")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s  %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tillit <command> --help' for a command's flags and subcommands.")
}

// runSubcommand dispatches "tillit <name> <sub> ..." to one of cmds.
func runSubcommand(ctx context.Context, name string, cmds []command, args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: tillit %s <subcommand> [flags]\n\nSubcommands:\n", name)
		for _, c := range cmds {
			fmt.Fprintf(w, "  %-10s  %s\n", c.name, c.summary)
		}
		fmt.Fprintf(w, "\nRun 'tillit %s <subcommand> --help' for its flags.\n", name)
	}
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return flag.ErrHelp
	}
	if c, ok := find(cmds, args[0]); ok {
		return c.run(ctx, args[1:], stdout, stderr)
	}
	unknown(stderr, "tillit "+name, "subcommand", args[0], cmds)
	return errUsage
}

// newFlagSet returns a flag set that reports errors instead of exiting, so
// commands can be tested in-process.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tillit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// setUsage gives fs its help text: the usage line, what the command does,
// and its flags.
func setUsage(fs *flag.FlagSet, usage string, description ...string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n", usage)
		if len(description) > 0 {
			fmt.Fprintf(w, "\n%s\n", strings.Join(description, "\n"))
		}
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
}

// unexpectedArg refuses the first argument fs did not take.
func unexpectedArg(fs *flag.FlagSet) error {
	return badArgs(fs.Output(), strings.TrimPrefix(fs.Name(), "tillit "), "unexpected argument %q", fs.Arg(0))
}

// parseFlags parses args and maps a flag error to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
