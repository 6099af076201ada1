package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// runHealth asks a running server whether it is ready: what a container's
// HEALTHCHECK runs, since a minimal image has no curl.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("health", stderr)
	configPath := fs.String("config", "", "configuration file of the server: its listen address and tls decide the URL")
	url := fs.String("url", "", "the readiness URL to ask (default http://127.0.0.1:8080/readyz, or from --config)")
	timeout := fs.Duration("timeout", 5*time.Second, "limit on the request")
	setUsage(fs, "tillit health [--config tillit.yaml | --url URL] [--timeout D]",
		"Asks a running server's /readyz whether it is ready (store reachable, signing key",
		"loaded, audit chain whole), prints the answer and exits 0 when it is, 1 when not.",
		"For a container's HEALTHCHECK or a service manager. The server's certificate is not",
		"verified: the probe sends nothing secret and is meant for the local listener.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	if *configPath != "" && *url != "" {
		return badArgs(stderr, "health", "--config and --url exclude each other")
	}
	target := *url
	if target == "" {
		listen, useTLS := "127.0.0.1:8080", false
		if *configPath != "" {
			cfg, err := loadConfig(*configPath, false, "")
			if err != nil {
				return err
			}
			listen, useTLS = cfg.Listen, cfg.TLS.Enabled()
		}
		target = readyURL(listen, useTLS)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{
		// The listener's certificate names the issuer's host, not the
		// address probed; and a probe that fails on an expired
		// certificate would restart a server that only needs a new one.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	answer := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: not ready: %d %s", target, resp.StatusCode, answer)
	}
	fmt.Fprintf(stdout, "%s: %s\n", target, answer)
	return nil
}

// readyURL is the /readyz URL of a server listening on listen, reached
// over loopback when it listens on every address.
func readyURL(listen string, useTLS bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz"
}
