package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/internal/loadtest"
	"github.com/tillit-sts/tillit/keyfile"
)

// connectHelp is the help of --connect, which token, call and bench token
// share.
const connectHelp = "host:port to connect to instead of the issuer's, as behind a load balancer (requests still name the issuer)"

// checkConnect reports a --connect value that is not host:port.
func checkConnect(addr string) error {
	if addr == "" {
		return nil
	}
	if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
		return fmt.Errorf("--connect %q: want HOST:PORT", addr)
	}
	return nil
}

// clientFlags are the flags of the commands that act as a client (token,
// call): who the client is and what it asks for.
type clientFlags struct {
	issuer, clientID, keyPath *string
	scopes                    scopeFlag
	resource                  *string
	bearer                    *bool
	childOrg, org, journalID  *string
	connect                   *string
}

func addClientFlags(fs *flag.FlagSet, resourceHelp, bearerHelp string) *clientFlags {
	f := &clientFlags{
		issuer:   fs.String("issuer", "", "issuer URL of the token service (required)"),
		clientID: fs.String("client-id", "", "client ID (required)"),
		keyPath:  fs.String("key", "", "the client's private key, a JWK with alg or a PEM file (required)"),
	}
	fs.Var(&f.scopes, "scope", "scope to ask for; repeat the flag or separate scopes with spaces")
	f.resource = fs.String("resource", "", resourceHelp)
	f.bearer = fs.Bool("bearer", false, bearerHelp)
	f.childOrg = fs.String("child-org", "", "single-tenant client: the child organisation (9 digits) to act for")
	f.org = fs.String("org", "", "multi-tenant client: the organisation to act for, PARENT or PARENT:CHILD")
	f.journalID = fs.String("sfm-journal-id", "", "SFM journal id (a UUID) to send in assertion_details")
	f.connect = fs.String("connect", "", connectHelp)
	return f
}

// check reports a usage error for the command name, or nil.
func (f *clientFlags) check(stderr io.Writer, name string) error {
	switch {
	case *f.issuer == "" || *f.clientID == "" || *f.keyPath == "":
		return badArgs(stderr, name, "--issuer, --client-id and --key are required")
	case *f.childOrg != "" && *f.org != "":
		return badArgs(stderr, name, "--child-org is for single-tenant clients, --org for multi-tenant ones; give one")
	}
	if err := checkConnect(*f.connect); err != nil {
		return badArgs(stderr, name, "%v", err)
	}
	return nil
}

// client makes the client and the token request the flags describe; a
// usage error is reported for the command name.
func (f *clientFlags) client(stderr io.Writer, name string) (*client.Client, client.TokenRequest, error) {
	details, err := tokenDetails(*f.childOrg, *f.org, *f.journalID)
	if err != nil {
		return nil, client.TokenRequest{}, badArgs(stderr, name, "%v", err)
	}
	key, err := keyfile.ReadFile(*f.keyPath)
	if err != nil {
		return nil, client.TokenRequest{}, err
	}
	cfg := client.Config{Issuer: *f.issuer, ClientID: *f.clientID, Key: key}
	if *f.connect != "" {
		// Only the token service's requests (discovery, token) go to
		// --connect; call's request goes where its URL says.
		cfg.HTTPClient = &http.Client{Transport: loadtest.Transport(*f.connect), Timeout: 30 * time.Second}
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, client.TokenRequest{}, err
	}
	return c, client.TokenRequest{
		Scopes:           f.scopes,
		Resource:         *f.resource,
		AssertionDetails: details,
		Bearer:           *f.bearer,
	}, nil
}
