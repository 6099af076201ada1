package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is the release version, stamped by the release build
// (scripts/release.sh: -ldflags "-X main.version=v1.2.3"). Empty in other
// builds, which take the module version from the build info instead:
// `go install …@v1.2.3` records v1.2.3 there, a build in a checkout
// "(devel)".
var version string

// commit is the commit the release was built from, stamped next to
// version: Go records the VCS revision itself (vcs.revision) only when it
// finds a .git folder, which a git worktree does not have.
var commit string

// buildInfo is what `tillit version` prints.
type buildInfo struct {
	Version   string // the release or module version
	Commit    string // the VCS revision, "+dirty" when the tree had changes
	Time      string // the commit's time
	GoVersion string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: "unknown", Time: "unknown"}
	if commit != "" {
		b.Commit = commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		b.GoVersion = "unknown"
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	b.GoVersion = info.GoVersion
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		b.Commit += "+dirty"
	}
	return b
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	setUsage(fs, "tillit version", "Print the version, the commit it was built from and the Go version.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	b := readBuildInfo()
	fmt.Fprintf(stdout, "tillit %s\ncommit %s (%s)\n%s\n", b.Version, b.Commit, b.Time, b.GoVersion)
	return nil
}
