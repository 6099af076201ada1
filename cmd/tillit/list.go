package main

import (
	"context"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tillit-sts/tillit/internal/store"
)

// listing describes a "tillit <kind> list" command.
type listing struct {
	name   string   // "hpr list"
	help   []string // the description under the usage line
	header string   // the table's tab-separated column names
}

// listRecords runs a list command: it reads every record of kind from the
// store the flags name and prints a table with a row of cells per record.
func listRecords[T any](ctx context.Context, args []string, stdout, stderr io.Writer, kind *store.Kind[T], l listing, row func(*T) []string) error {
	fs := newFlagSet(l.name, stderr)
	sf := addStoreFlags(fs)
	setUsage(fs, "tillit "+l.name+" --config tillit.yaml | --dev", l.help...)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	st, err := openRegistryStore(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := store.List(ctx, st, kind)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	io.WriteString(tw, l.header+"\n")
	for i := range list {
		io.WriteString(tw, strings.Join(row(&list[i]), "\t")+"\n")
	}
	return tw.Flush()
}

// source names where a record came from: the configuration file, or
// other (the CLI, or the store for kinds only an API makes).
func source(managedBy, other string) string {
	if managedBy == store.ManagedByFile {
		return "file"
	}
	return other
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
