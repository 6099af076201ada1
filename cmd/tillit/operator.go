package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/demo"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
)

// storeFlags name the store an operator command works on: the one the same
// configuration gives `tillit serve`. Commands may run while serve runs.
type storeFlags struct {
	config  *string
	dev     *bool
	dataDir *string
}

func addStoreFlags(fs *flag.FlagSet) *storeFlags {
	return &storeFlags{
		config:  fs.String("config", "", "configuration file of the server (YAML)"),
		dev:     fs.Bool("dev", false, "work on the data folder of 'tillit serve --dev'"),
		dataDir: fs.String("data-dir", "data", "with --dev: the data folder"),
	}
}

// load reads the configuration the flags name.
func (f *storeFlags) load() (*config.Config, error) {
	path := *f.config
	if path == "" {
		if !*f.dev {
			return nil, errors.New("name the server's configuration with --config, or use --dev")
		}
		path = filepath.Join(*f.dataDir, demo.ConfigFile)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%s does not exist: start 'tillit serve --dev' once first", path)
		}
	}
	return loadConfig(path, *f.dev, "")
}

// openKeys opens the store and the key manager of a configuration. The
// caller closes the store.
func openKeys(ctx context.Context, cfg *config.Config) (*keys.Manager, store.Store, error) {
	kek, err := cfg.KeyEncryptionKey()
	if err != nil {
		return nil, nil, err
	}
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		return nil, nil, err
	}
	st, err := server.Open(ctx, cfg.Storage)
	if err != nil {
		return nil, nil, err
	}
	m, err := keys.NewManager(ctx, st, sealer, server.KeysConfig(cfg), nil, nil)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return m, st, nil
}
