package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// syntaxError turns a YAML syntax error into an Error on the line of the
// mistake, with a hint for the common ones.
//
// yaml.v3 often reports the line where the enclosing block began (its
// context) rather than the line it could not read: a list item indented
// one space too far in a list of a hundred clients is reported on the
// list's first line. The line of the mistake is the last line of the
// shortest prefix of the file that fails with the same problem; a prefix
// of whole lines that ends before the mistake parses, as YAML allows a
// document to end after any complete line.
func (s source) syntaxError(err error, data []byte) *Error {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: s.file, Msg: strings.Replace(msg, "yaml: ", "YAML: ", 1), Err: err}
	}
	line, _ := strconv.Atoi(m[1])
	problem := m[2]
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(data) <= maxLocateSize {
		if l := mistakeLine(lines, problem); l > 0 {
			line = l
		}
	}
	e := &Error{File: s.file, Line: line, Msg: "YAML: " + problem, Err: err}
	if line > 0 && line <= len(lines) {
		if hint := syntaxHint(string(lines[line-1]), problem); hint != "" {
			e.Msg += "; " + hint
		}
	}
	return e
}

// maxLocateSize bounds the files whose mistake syntaxError looks for: the
// search parses the file about log2(lines) times, up to the mistake, which
// takes some 3 s for 1 MiB (20,000 clients). A larger file gets yaml.v3's
// line.
const maxLocateSize = 1 << 20

// mistakeLine returns the 1-based line that ends the shortest prefix of
// lines that fails to parse with problem, or 0 when none does (the whole
// file parses, or fails otherwise). The search is binary: a prefix that
// holds the mistake fails with it however much of the rest follows. A
// prefix may also fail for being cut short (a flow list over several
// lines), but with another problem, which does not count.
func mistakeLine(lines [][]byte, problem string) int {
	fails := func(n int) bool {
		return syntaxProblem(bytes.Join(lines[:n], nil)) == problem
	}
	lo, hi := 1, len(lines)
	if hi == 0 || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// syntaxProblem parses every document of data and returns the problem of
// the first syntax error, without its line, or "" when there is none.
func syntaxProblem(data []byte) string {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				return m[2]
			}
			return err.Error()
		}
	}
}

var (
	// noSpaceKeyRE is a line that reads as a key and a value with no
	// space after the colon ("listen:127.0.0.1:8080"), which YAML takes
	// for one string.
	noSpaceKeyRE = regexp.MustCompile(`^\s*(?:-\s+)?([A-Za-z0-9_]+):(\S.*)$`)
	// leadingSpaceRE is the indentation of a line.
	leadingSpaceRE = regexp.MustCompile(`^[ \t]*`)
)

// noSpaceHint is the hint for a line or a string that is a key and a
// value without a space after the colon, or "". A URL's "://" is not such
// a colon.
func noSpaceHint(line string) string {
	m := noSpaceKeyRE.FindStringSubmatch(line)
	if m == nil || strings.HasPrefix(m[2], "//") {
		return ""
	}
	return fmt.Sprintf("a key needs a space after its colon (%s: %s)", m[1], strings.TrimSpace(m[2]))
}

// syntaxHint says what usually causes a syntax error on line, or "".
func syntaxHint(line, problem string) string {
	line = strings.TrimRight(line, "\r\n")
	indent := leadingSpaceRE.FindString(line)
	switch {
	case strings.Contains(indent, "\t"):
		return "this line is indented with a tab: YAML indents with spaces only"
	case noSpaceHint(line) != "":
		return noSpaceHint(line)
	case problem == "mapping values are not allowed in this context" && strings.Count(line, ": ") > 1:
		return "a value that holds \": \" needs quotes"
	}
	switch problem {
	case "did not find expected key", "did not find expected '-' indicator",
		"block sequence entries are not allowed in this context",
		"mapping values are not allowed in this context":
		return "check this line's indentation against the lines above: the items of one list start with \"-\" in one column, " +
			"and the keys of one mapping (an item's keys too, from the first after its \"-\") start in one column"
	}
	return ""
}
