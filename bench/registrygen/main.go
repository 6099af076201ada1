// Command registrygen writes a Tillit configuration with a registry of N
// clients, each with its own ES256 key, for bench/registry.sh.
//
//	go run ./bench/registrygen -n 100000 -out /tmp/reg
//
// It writes OUT/tillit.yaml (issuer and listen from -listen, data_dir OUT)
// and OUT/client-0.jwk, the private key of the first client, which the
// script uses to request tokens. With -disable ID the same registry is
// written again with that client disabled, for a change to propagate; the
// keys come from OUT/keys.json, kept from the first run so that every
// other client stays the same.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/keyfile"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "registrygen:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 10, "number of clients")
	out := flag.String("out", "", "folder to write tillit.yaml and client-0.jwk to (required)")
	listen := flag.String("listen", "127.0.0.1:9410", "listen address; the issuer is http://LISTEN")
	poll := flag.String("poll", "2s", "registry_poll")
	disable := flag.String("disable", "", "write the registry again with this client disabled")
	file := flag.String("file", "tillit.yaml", "name of the configuration file in -out")
	instance := flag.String("instance", "a", "instance name (audit chains are per instance)")
	storage := flag.String("storage", "", "storage setting; empty: SQLite in -out")
	flag.Parse()
	if *out == "" || *n < 1 {
		flag.Usage()
		return errors.New("-out and a positive -n are required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pubs, err := publicKeys(*n, *out)
	if err != nil {
		return err
	}

	f, err := os.Create(filepath.Join(*out, *file))
	if err != nil {
		return err
	}
	storageLine := ""
	if *storage != "" {
		storageLine = fmt.Sprintf("storage: %q\n", *storage)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `issuer: http://%s
listen: %s
data_dir: .
instance: %s
registry_poll: %s
%slog:
  level: info
apis:
  - audience: nhn:bench
    name: Bench API
    scopes: [nhn:bench/api]
organisations:
  - {number: "310900028", name: Bench supplier AS}
  - {number: "310900036", name: Bench customer AS}
client_systems:
  - {id: bench, name: Load test, supplier: "310900028"}
clients:
`, *listen, *listen, *instance, *poll, storageLine)
	for i, pub := range pubs {
		id := fmt.Sprintf("bench-%d", i)
		status := ""
		if id == *disable {
			status = "\n    status: disabled"
		}
		fmt.Fprintf(w, `  - id: %s
    name: Bench client %d
    system: bench
    organisation: "310900036"
    scopes: [nhn:bench/api]%s
    jwks: '%s'
`, id, i, status, pub)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// publicKeys returns n public JWKS, one key each, made once and kept in
// OUT/keys.json; the first client's private key goes to OUT/client-0.jwk.
func publicKeys(n int, out string) ([]string, error) {
	path := filepath.Join(out, "keys.json")
	var pubs []string
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &pubs); err != nil {
			return nil, err
		}
		if len(pubs) == n {
			return pubs, nil
		}
	}
	pubs = make([]string, n)
	for i := range pubs {
		k, err := keyfile.Generate(jose.ES256, 0)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := keyfile.WritePrivate(filepath.Join(out, "client-0.jwk"), k); err != nil {
				return nil, err
			}
		}
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{*keyfile.Public(k)}})
		if err != nil {
			return nil, err
		}
		pubs[i] = string(b)
	}
	data, err := json.Marshal(pubs)
	if err != nil {
		return nil, err
	}
	return pubs, os.WriteFile(path, data, 0o644)
}
