package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/keyfile"
)

// testIDP is the TestIDP's name in acr_values: --test-pid logs in there.
const testIDP = "idp:testidp-oidc"

func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("login", stderr)
	issuer := fset.String("issuer", "", "issuer URL of the token service (required)")
	clientID := fset.String("client-id", "", "client ID of a client that logs people in (required)")
	keyPath := fset.String("key", "", "the client's private key, a JWK with alg or a PEM file (required)")
	var scopes, resources, acr scopeFlag
	fset.Var(&scopes, "scope", "scope to ask for (openid is always asked for); repeat the flag or separate with spaces")
	fset.Var(&resources, "resource", "resource indicator of an API the login is for; the first gets the token")
	fset.Var(&acr, "acr", "acr_values entry, e.g. Level4 or idp:NAME")
	port := fset.Int("port", 0, "port of the loopback redirect listener on 127.0.0.1; 0 picks a free one")
	timeout := fset.Duration("timeout", 5*time.Minute, "how long to wait for the browser to come back")
	noBrowser := fset.Bool("no-browser", false, "print the login URL instead of opening a browser")
	testPID := fset.String("test-pid", "", "log in at the TestIDP as this pid, without a browser (test environments)")
	testLevel := fset.String("test-security-level", "", "TestIDP: the security level of the login (3 or 4)")
	testHPR := fset.String("test-hpr", "", "TestIDP: the HPR number of the login")
	decode := fset.Bool("decode", false, "also print the access token's and the ID token's header and claims")
	asJSON := fset.Bool("json", false, "print the whole token response as JSON instead of the access token")
	setUsage(fset, "tillit login --issuer URL --client-id ID --key FILE [--scope S ...] [--resource R ...]\n                    [--acr V ...] [--port N] [--timeout D] [--no-browser]\n                    [--test-pid PID [--test-security-level N] [--test-hpr N]] [--decode] [--json]",
		"Logs a person in with the authorization code flow (PAR, PKCE, DPoP): listens on",
		"http://127.0.0.1:PORT/callback, opens the browser at the login page (or prints",
		"its URL), redeems the code, verifies the ID token and prints the access token.",
		"With --test-pid the TestIDP logs the person in and no browser is needed.")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	switch {
	case fset.NArg() > 0:
		return badArgs(stderr, "login", "unexpected argument %q", fset.Arg(0))
	case *issuer == "" || *clientID == "" || *keyPath == "":
		return badArgs(stderr, "login", "--issuer, --client-id and --key are required")
	case *testPID == "" && (*testLevel != "" || *testHPR != ""):
		return badArgs(stderr, "login", "--test-security-level and --test-hpr need --test-pid")
	case *port < 0 || *port > 65535:
		return badArgs(stderr, "login", "--port %d is not a port", *port)
	case *timeout <= 0:
		return badArgs(stderr, "login", "--timeout must be positive")
	}
	key, err := keyfile.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{Issuer: *issuer, ClientID: *clientID, Key: key})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("redirect listener: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	callbacks := make(chan url.Values, 1)
	srv := &http.Server{Handler: callbackHandler(callbacks), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	req := client.AuthRequest{RedirectURI: redirect, Scopes: scopes, Resources: resources, ACRValues: acr}
	if *testPID != "" {
		if len(acr) == 0 {
			req.ACRValues = []string{testIDP}
		}
		req.Extra = url.Values{"test_pid": {*testPID}}
		if *testLevel != "" {
			req.Extra.Set("test_security_level", *testLevel)
		}
		if *testHPR != "" {
			req.Extra.Set("test_hpr_number", *testHPR)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p, err := c.PushAuthorization(ctx, req)
	if err != nil {
		return err
	}

	// The TestIDP needs no person at the keyboard: follow its redirects
	// as a browser would, to the listener.
	browse := make(chan error, 1)
	switch {
	case *testPID != "":
		go func() {
			// Only a failure is sent: on success the callback is the answer.
			if err := followRedirects(ctx, p.AuthURL, redirect); err != nil {
				browse <- err
			}
		}()
	case *noBrowser || openBrowser(p.AuthURL) != nil:
		fmt.Fprintf(stderr, "Open this URL in a browser to log in:\n\n  %s\n\n", p.AuthURL)
	default:
		fmt.Fprintf(stderr, "Opened the browser to log in; waiting for it to come back to %s\n", redirect)
	}
	var q url.Values
	select {
	case q = <-callbacks:
	case err := <-browse:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the browser: %w", ctx.Err())
	}
	l, err := p.Exchange(ctx, q)
	if err != nil {
		return err
	}

	var out bytes.Buffer
	if *asJSON {
		if err := json.Indent(&out, l.First.Raw, "", "  "); err != nil {
			return fmt.Errorf("token response: %w", err)
		}
		out.WriteByte('\n')
	} else {
		out.WriteString(l.First.AccessToken + "\n")
	}
	if *decode {
		if err := decodeAccessToken(&out, l.First, c.DPoPThumbprint()); err != nil {
			fmt.Fprintf(stderr, "tillit login: cannot decode the access token: %v\n", err)
		}
		out.WriteString("# ID token (verified)\n")
		if header, claims, err := decodeJWT(l.IDToken); err != nil {
			fmt.Fprintf(stderr, "tillit login: cannot decode the ID token: %v\n", err)
		} else if err := writeDecoded(&out, header, claims, time.Now()); err != nil {
			return err
		}
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

// callbackHandler hands the query of the first request to /callback to
// callbacks; later ones are told the login is already done.
func callbackHandler(callbacks chan<- url.Values) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		select {
		case callbacks <- r.URL.Query():
			io.WriteString(w, "tillit login: the browser is back. You can close this window.\n")
		default:
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, "tillit login: a login has come back already.\n")
		}
	})
	return mux
}

// followRedirects gets authURL with cookies and follows the redirects,
// which must end at the redirect listener.
func followRedirects(ctx context.Context, authURL, redirect string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Jar: jar}).Do(req)
	if err != nil {
		return fmt.Errorf("TestIDP login: %w", err)
	}
	resp.Body.Close()
	end := resp.Request.URL
	if resp.StatusCode != http.StatusOK || end.Scheme+"://"+end.Host+end.Path != redirect {
		return fmt.Errorf("TestIDP login: ended at %s%s with HTTP %d, not at the redirect URI", end.Host, end.Path, resp.StatusCode)
	}
	return nil
}

// openBrowser opens u in the desktop's browser.
func openBrowser(u string) error {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, u)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
