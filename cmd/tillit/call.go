package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/client"
)

// headerFlag collects -H "Name: value".
type headerFlag []string

func (h *headerFlag) String() string { return strings.Join(*h, ", ") }

func (h *headerFlag) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New(`want "Name: value"`)
	}
	*h = append(*h, v)
	return nil
}

// callTimeout bounds the whole call: token requests and the API request.
const callTimeout = 60 * time.Second

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("call", stderr)
	cf := addClientFlags(fset, "resource indicator: the audience of the API, e.g. nhn:deft", "use a Bearer token: send no DPoP proof")
	method := fset.String("X", "", "HTTP method (default GET, or POST with -d)")
	data := fset.String("d", "", "request body; @FILE reads it from a file")
	var headers headerFlag
	fset.Var(&headers, "H", `request header "Name: value"; repeat the flag for several`)
	include := fset.Bool("i", false, "print the response status and headers before the body")
	setUsage(fset, "tillit call --issuer URL --client-id ID --key FILE [--scope S ...] [--resource R]\n                   [--child-org N | --org PARENT[:CHILD]] [--sfm-journal-id UUID] [--bearer]\n                   [--connect HOST:PORT] [-X METHOD] [-d DATA|@FILE] [-H 'Name: value' ...] [-i] URL",
		"Calls an API as the client: gets a token (client_credentials, private_key_jwt and,",
		"unless --bearer, DPoP), sends the request with it and a DPoP proof, answers the",
		"use_dpop_nonce round trips of the STS and the API, and prints the response body.",
		"A status of 400 or more also exits with 1. Flags may follow the URL. --connect",
		"sends the token requests to one instance of several behind the issuer's address;",
		"the API request goes where URL says.")
	// Flags may come before and after the URL, as in curl.
	var target string
	for rest := args; ; {
		if err := parseFlags(fset, rest); err != nil {
			return err
		}
		if fset.NArg() == 0 {
			break
		}
		if target != "" {
			return badArgs(stderr, "call", "unexpected argument %q", fset.Arg(0))
		}
		target, rest = fset.Arg(0), fset.Args()[1:]
	}
	if target == "" {
		return badArgs(stderr, "call", "no URL to call")
	}
	if err := cf.check(stderr, "call"); err != nil {
		return err
	}
	c, treq, err := cf.client(stderr, "call")
	if err != nil {
		return err
	}
	body, err := callBody(*data)
	if err != nil {
		return err
	}
	m := strings.ToUpper(*method)
	if m == "" {
		m = http.MethodGet
		if body != nil {
			m = http.MethodPost
		}
	}

	ts, err := c.TokenSource(treq)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body) // replayable for the API's nonce retry
	}
	req, err := http.NewRequestWithContext(ctx, m, target, rd)
	if err != nil {
		return err
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	hc := &http.Client{Transport: &client.Transport{Source: ts}}
	resp, err := hc.Do(req)
	if err != nil {
		// The STS's refusal says more without net/http's "Get URL:" in
		// front: the API was never called.
		if ce := (*client.Error)(nil); errors.As(err, &ce) {
			return ce
		}
		return err
	}
	defer resp.Body.Close()
	if *include {
		fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
		resp.Header.Write(stdout)
		fmt.Fprintln(stdout)
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode >= 400 {
		msg := fmt.Sprintf("%s answered %s", m+" "+target, resp.Status)
		if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
			msg += " (WWW-Authenticate: " + printable(ch) + ")"
		}
		return errors.New(msg)
	}
	return nil
}

// callBody reads -d: the text itself, or a file after @.
func callBody(data string) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, fmt.Errorf("-d: %w", err)
		}
		return b, nil
	}
	return []byte(data), nil
}

// printable drops control characters from server text before it goes to a
// terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
