package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/helseid"
)

// scopeFlag collects --scope: the flag may be repeated, and one value may
// hold several scopes separated by spaces, as in a token request.
type scopeFlag []string

func (s *scopeFlag) String() string { return strings.Join(*s, " ") }

func (s *scopeFlag) Set(v string) error {
	f := strings.Fields(v)
	if len(f) == 0 {
		return errors.New("empty scope")
	}
	*s = append(*s, f...)
	return nil
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("token", stderr)
	cf := addClientFlags(fset, "resource indicator: the audience of the API the token is for", "ask for a Bearer token: send no DPoP proof")
	decode := fset.Bool("decode", false, "also print the access token's header and claims (not verified)")
	asJSON := fset.Bool("json", false, "print the whole token response as JSON instead of the access token")
	setUsage(fset, "tillit token --issuer URL --client-id ID --key FILE [--scope S ...] [--resource R]\n                    [--bearer] [--child-org N | --org PARENT[:CHILD]] [--sfm-journal-id UUID]\n                    [--connect HOST:PORT] [--decode] [--json]",
		"Gets an access token with client_credentials, a private_key_jwt assertion and,",
		"unless --bearer, DPoP (the client key signs the proofs), and prints it. --connect",
		"reaches one instance of several behind the issuer's address.")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return badArgs(stderr, "token", "unexpected argument %q", fset.Arg(0))
	}
	if err := cf.check(stderr, "token"); err != nil {
		return err
	}
	c, treq, err := cf.client(stderr, "token")
	if err != nil {
		return err
	}
	tok, err := c.Token(ctx, treq)
	if err != nil {
		return err
	}

	var out bytes.Buffer
	if *asJSON {
		if err := json.Indent(&out, tok.Raw, "", "  "); err != nil {
			return fmt.Errorf("token response: %w", err)
		}
		out.WriteByte('\n')
	} else {
		out.WriteString(tok.AccessToken + "\n")
	}
	if *decode {
		if err := decodeAccessToken(&out, tok, c.DPoPThumbprint()); err != nil {
			fmt.Fprintf(stderr, "tillit token: cannot decode the access token: %v\n", err)
		}
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

// tokenDetails turns the organisation and journal flags into
// assertion_details entries; a flag value that is not valid is an error.
func tokenDetails(childOrg, org, journalID string) ([]helseid.Detail, error) {
	var details []helseid.Detail
	switch {
	case childOrg != "":
		d, err := helseid.NewChildOrganization(childOrg)
		if err != nil {
			return nil, fmt.Errorf("--child-org: %w", err)
		}
		details = append(details, d)
	case org != "":
		parent, child, _ := strings.Cut(org, ":")
		d, err := helseid.NewMultiTenantOrganization(parent, child)
		if err != nil {
			return nil, fmt.Errorf("--org: %w", err)
		}
		details = append(details, d)
	}
	if journalID != "" {
		d, err := helseid.NewSFMJournalID(journalID)
		if err != nil {
			return nil, fmt.Errorf("--sfm-journal-id: %w", err)
		}
		details = append(details, d)
	}
	return details, nil
}

// decodeAccessToken prints the token's header and claims and, for a DPoP
// token, whether cnf.jkt names the key the proofs were signed with (the
// check NHN's Java library makes before it calls an API).
func decodeAccessToken(w *bytes.Buffer, tok *client.TokenResponse, jkt string) error {
	header, claims, err := decodeJWT(tok.AccessToken)
	if err != nil {
		return err
	}
	if err := writeDecoded(w, header, claims, time.Now()); err != nil {
		return err
	}
	if !strings.EqualFold(tok.TokenType, "DPoP") {
		return nil
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(claims, &c); err != nil || c.Cnf.JKT == "" {
		w.WriteString("# cnf.jkt is missing: the DPoP token is not bound to a key\n")
	} else if c.Cnf.JKT == jkt {
		w.WriteString("# cnf.jkt is the thumbprint of the DPoP key\n")
	} else {
		fmt.Fprintf(w, "# cnf.jkt is NOT the thumbprint of the DPoP key (%s)\n", jkt)
	}
	return nil
}
