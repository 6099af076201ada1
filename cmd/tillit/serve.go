package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/demo"
	"github.com/tillit-sts/tillit/internal/server"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	configPath := fs.String("config", "", "configuration file (YAML); see docs/configuration.md")
	dev := fs.Bool("dev", false, "development mode: no config file needed; creates a data folder with a demo registry, keys and a SQLite database")
	dataDir := fs.String("data-dir", "data", "with --dev: the data folder")
	listen := fs.String("listen", "", "listen address, overriding the configuration (host:port)")
	// Hidden: for tests that run several servers and must see a key
	// rotation reach all of them (internal/clustertest). Left out of the
	// usage text so that no operator tunes it.
	keysEvery := fs.Duration(hiddenKeyMaintenance, 0, "")
	// Hidden too: lets a multi-process test restart a killed server
	// without waiting the default 30 s for its instance lease to expire.
	leaseTTL := fs.Duration(hiddenLeaseTTL, 0, "")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: tillit serve --dev | --config tillit.yaml [--listen HOST:PORT]")
		fmt.Fprintln(w, "\nRuns the token service in the foreground until interrupted (SIGINT or SIGTERM), then")
		fmt.Fprintln(w, "lets requests in flight finish. --dev needs no configuration: it creates a data folder")
		fmt.Fprintln(w, "with a demo registry, client keys and a SQLite database, and prints what to run next.")
		fmt.Fprintln(w, "Otherwise the file says everything (docs/configuration.md) and a key-encryption key")
		fmt.Fprintln(w, "must be set. Logs go to standard error.")
		fmt.Fprintln(w, "\nFlags:")
		printVisibleDefaults(fs, w, hiddenKeyMaintenance, hiddenLeaseTTL)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	if *configPath == "" && !*dev {
		fs.Usage()
		return errUsage
	}

	var setup *demo.Setup
	if *dev && *configPath == "" {
		addr := *listen
		if addr == "" {
			addr = config.Default().Listen
		}
		var err error
		if setup, err = demo.Prepare(*dataDir, addr); err != nil {
			return err
		}
		*configPath = setup.ConfigPath
	}
	src, err := config.ReadSource(*configPath, config.Overrides{Dev: *dev, Listen: *listen})
	if err != nil {
		return err
	}
	cfg, err := src.Settings()
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if os.Getenv("GOMAXPROCS") == "" {
		// An operator's GOMAXPROCS wins; otherwise see server.Procs.
		runtime.GOMAXPROCS(server.Procs(cfg.Storage, runtime.GOMAXPROCS(0), runtime.NumCPU()))
	}

	// The checks that need no store come first, so that a mistake costs
	// no port and writes nothing.
	if _, err := cfg.KeyEncryptionKey(); err != nil {
		return errors.New("no key-encryption key: set " + config.EnvKeyEncryptionKey + " or keys.encryption_key_file (outside --dev, private keys are never stored in clear)")
	}
	// Listen before anything is written: a busy port must not be found
	// only after the registry was applied and a signing key created.
	where := fmt.Sprintf("listen in %s; or override it with --listen", *configPath)
	if *listen != "" {
		where = "given with --listen"
	}
	ln, err := listenOn(cfg.Listen, where)
	if err != nil {
		return err
	}
	defer ln.Close()
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if metricsLn, err = listenOn(cfg.Metrics.Listen, "metrics.listen in "+*configPath); err != nil {
			return err
		}
		defer metricsLn.Close()
	}
	// WaitForLease: a server restarted after a crash finds its own
	// unreleased instance lease, and gets it once it expires; a second
	// server beside a running one is refused.
	srv, err := server.New(ctx, cfg, server.Options{Log: log, KeyMaintenance: *keysEvery, LeaseTTL: *leaseTTL, WaitForLease: true, Source: src})
	if err != nil {
		return err
	}
	defer srv.Close()
	// The registry the file declares is in the store and the server's
	// snapshot now, and nothing refers to the file any more: give back the
	// memory that reading and applying it took, which for a large
	// registry is several times the snapshot.
	debug.FreeOSMemory()
	attrs := []any{"issuer", srv.Issuer(), "listen", ln.Addr().String(), "tls", cfg.TLS.Enabled()}
	if metricsLn != nil {
		attrs = append(attrs, "metrics_listen", metricsLn.Addr().String())
	}
	attrs = append(attrs, "storage", storageName(cfg.Storage), "instance", cfg.Instance, "dev", cfg.Dev, "gomaxprocs", runtime.GOMAXPROCS(0))
	log.Info("tillit is serving", attrs...)
	if setup != nil {
		printDevHelp(stdout, srv.Issuer(), setup)
	}
	return srv.ServeListeners(ctx, server.Listeners{Main: ln, Metrics: metricsLn})
}

// listenOn opens the server's port, with an error that says where the
// address came from and how to change it.
func listenOn(addr, where string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w", addr, where, err)
	}
	return ln, nil
}

// hiddenKeyMaintenance is serve's hidden flag: how often the server
// reloads its keys from the store (server.Options.KeyMaintenance).
const hiddenKeyMaintenance = "key-maintenance-interval"

// hiddenLeaseTTL is serve's other hidden flag: how long its instance lease
// lasts unless renewed (server.Options.LeaseTTL).
const hiddenLeaseTTL = "instance-lease-ttl"

// printVisibleDefaults prints the flags of fs but the hidden ones.
func printVisibleDefaults(fs *flag.FlagSet, w io.Writer, hidden ...string) {
	visible := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	visible.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(hidden, f.Name) {
			visible.Var(f.Value, f.Name, f.Usage)
			visible.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	visible.PrintDefaults()
}

// loadConfig reads the file and applies the command-line overrides.
func loadConfig(path string, dev bool, listen string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return config.ParseWith(path, data, config.Overrides{Dev: dev, Listen: listen})
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel(), ReplaceAttr: durationsAsText}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationsAsText writes durations as Go writes them ("10s", "1.5ms"), as
// the configuration spells them, instead of slog's JSON nanoseconds.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// printDevHelp tells a new user where things are and what to run next.
func printDevHelp(w io.Writer, issuer string, s *demo.Setup) {
	self := "tillit"
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		self = "go run ./cmd/tillit" // started with go run
	}
	rel := func(p string) string {
		if r, err := filepath.Rel(".", p); err == nil {
			return r
		}
		return p
	}
	fmt.Fprintf(w, `
Tillit is running in development mode.
  issuer:  %s
  data:    %s  (SQLite database, key-encryption key, demo client keys)
  config:  %s  (edit and restart to change the registry)

Get a DPoP-bound token for the DEFT API:
  %s token --issuer %s --client-id %s --key %s --scope nhn:deft/api --decode

Or for SFM, with the sfm-id client claim:
  %s token --issuer %s --client-id %s --key %s --scope e-helse:sfm.api/sfm.api --decode

`, issuer, rel(s.Dir), rel(s.ConfigPath),
		self, issuer, demo.DEFTClientID, rel(s.DEFTKey),
		self, issuer, demo.SFMClientID, rel(s.SFMKey))
}

// storageName is the storage setting as it may be logged: a database URL
// without its password or query.
func storageName(storage string) string {
	if strings.Contains(storage, "://") && !strings.HasPrefix(storage, "sqlite:") {
		return redactURL(storage)
	}
	return storage
}
