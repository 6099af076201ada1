package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration and where it is.
type Error struct {
	// File is the name given to Parse; empty when there was none.
	File string
	// Line is 1-based; 0 when there is no line to point at (a setting
	// that is missing, an environment variable).
	Line int
	// Path is the key the problem is about, as in clients[0].scopes[1];
	// empty for the document as a whole.
	Path string
	Msg  string
	// Err is the underlying cause, if any.
	Err error

	lost bool // a value that did not decode and was left empty
}

// Error reads "file:line: path: message", the form editors and terminals
// turn into a link; without a file it starts with "config: ".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	default:
		b.WriteString("config: ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a configuration, ordered by line (the
// ones without a line first). Its Error text has one problem per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// err returns nil when there are no problems, so that a nil Errors never
// becomes a non-nil error interface.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	return es
}
