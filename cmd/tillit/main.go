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
	"strings"
	"syscall"
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
		{"keys", "make client keys; rotate the signing key", runKeys},
		{"delegation", "add, list and remove delegations to multi-tenant suppliers", runDelegation},
		{"idp", "list the identity providers", runIdP},
		{"hpr", "add, list and remove health personnel (the HPR stand-in)", runHPR},
		{"audit", "verify, tail and export the audit log", runAudit},
		{"token", "get an access token as a client", runToken},
		{"call", "call an API as a client, with a DPoP-bound token", runCall},
		{"decode", "print the header and claims of a JWT, unverified", runDecode},
		{"bench", "measure a token endpoint under load: tillit bench token", runBench},
		{"health", "ask a running server whether it is ready (for container health checks)", runHealth},
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
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
	fmt.Fprintf(stderr, "tillit: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tillit <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tillit <command> -h' for the flags of a command.")
}

// runSubcommand dispatches "tillit <name> <sub> ..." to one of cmds.
func runSubcommand(ctx context.Context, name string, cmds []command, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintf(stderr, "Usage: tillit %s <subcommand> [flags]\n\nSubcommands:\n", name)
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-10s %s\n", c.name, c.summary)
		}
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage()
		return flag.ErrHelp
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "tillit %s: unknown subcommand %q\n\n", name, args[0])
	usage()
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
