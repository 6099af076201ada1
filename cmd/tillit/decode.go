package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxDecodeInput bounds what decode reads: a JWT with a large header is a
// few KiB; nothing legitimate comes near this.
const maxDecodeInput = 256 << 10

// decodeStdin is where "tillit decode" reads a token from when none is given
// on the command line. Tests replace it.
var decodeStdin io.Reader = os.Stdin

func runDecode(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("decode", stderr)
	setUsage(fset, "tillit decode [TOKEN | -]",
		"Prints the header and claims of a JWT (an access token, an assertion, a DPoP",
		"proof), read from the argument or, without one or with -, from standard input.",
		"The signature is not checked.")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	var token string
	switch {
	case fset.NArg() > 1:
		return badArgs(stderr, "decode", "give one token, not %d", fset.NArg())
	case fset.NArg() == 1 && fset.Arg(0) != "-":
		token = fset.Arg(0)
	default:
		b, err := io.ReadAll(io.LimitReader(decodeStdin, maxDecodeInput+1))
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		token = string(b)
	}
	if len(token) > maxDecodeInput {
		return fmt.Errorf("input is larger than %d bytes", maxDecodeInput)
	}
	header, claims, err := decodeJWT(strings.TrimSpace(token))
	if err != nil {
		return err
	}
	return writeDecoded(stdout, header, claims, time.Now())
}

// decodeJWT splits a JWS in compact form and returns its header and
// payload, which must both be JSON objects. Nothing is verified.
func decodeJWT(token string) (header, claims json.RawMessage, err error) {
	if token == "" {
		return nil, nil, errors.New("no token given")
	}
	parts := strings.Split(token, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, nil, errors.New("input is an encrypted JWT (JWE); it cannot be read without the key")
	default:
		return nil, nil, fmt.Errorf("input is not a JWT: a signed JWT has three base64url parts separated by dots, this has %d", len(parts))
	}
	header, err = decodeJSONPart(parts[0], "header")
	if err != nil {
		return nil, nil, err
	}
	claims, err = decodeJSONPart(parts[1], "payload")
	if err != nil {
		return nil, nil, err
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, nil, errors.New("input is not a JWT: the signature is not base64url")
	}
	return header, claims, nil
}

func decodeJSONPart(part, name string) (json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return nil, fmt.Errorf("input is not a JWT: the %s is not base64url", name)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, fmt.Errorf("input is not a JWT: the %s is not a JSON object", name)
	}
	return b, nil
}

// timeClaims get a readable time under the claims, in this order.
var timeClaims = []string{"iat", "nbf", "exp", "auth_time"}

// writeDecoded prints header and claims indented, members in the order the
// token has them, numbers as written, with comment lines for the note that
// nothing was verified and for the times.
func writeDecoded(w io.Writer, header, claims json.RawMessage, now time.Time) error {
	var buf bytes.Buffer
	buf.WriteString("# Not verified: the signature is not checked, so anyone could have written this.\n")
	for _, part := range []struct {
		name string
		json json.RawMessage
	}{{"header", header}, {"claims", claims}} {
		fmt.Fprintf(&buf, "# %s\n", part.name)
		if err := json.Indent(&buf, part.json, "", "  "); err != nil {
			return fmt.Errorf("%s: %w", part.name, err)
		}
		buf.WriteByte('\n')
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(claims, &members); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	for _, name := range timeClaims {
		raw, ok := members[name]
		if !ok {
			continue
		}
		t, asString, ok := numericDate(raw)
		if !ok {
			fmt.Fprintf(&buf, "# %-9s is not a time\n", name)
			continue
		}
		note := ""
		if asString {
			note = ", written as a string"
		}
		fmt.Fprintf(&buf, "# %-9s %s (%s%s)\n", name, t.UTC().Format(time.RFC3339), relative(name, t, now), note)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// numericDate reads seconds since the epoch from a JSON number or, as some
// HelseID samples write iat, a string holding one.
func numericDate(raw json.RawMessage) (t time.Time, asString, ok bool) {
	s := string(raw)
	if u, err := strconv.Unquote(s); err == nil {
		s, asString = u, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), asString, true
}

// relative says how far t is from now; for exp it says whether the token
// has expired, which is what one looks for.
func relative(claim string, t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case claim == "exp" && d > 0:
		return "expires in " + d.String()
	case claim == "exp":
		return "expired " + (-d).String() + " ago"
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}
