// Package buildinfo says which build of mcp-authz is running. A release build stamps the
// version, commit and date with -ldflags "-X" (deploy/k8s/release); any other build
// falls back to what the Go toolchain recorded: the module version for `go install …@vX`,
// the VCS revision and commit time for `go build` in a clone.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the release build, e.g.
//
//	-ldflags "-X github.com/mcp-authz/mcp-authz/buildinfo.version=v0.3.0"
//
// They are strings, not constants, because -X only sets string variables.
var (
	version string
	commit  string
	date    string
)

// Info describes one build. Unknown parts read "unknown", so a dashboard or a bug report
// never shows an empty field it could mistake for a parse error.
type Info struct {
	Version   string // a release tag, a module version, or "devel"
	Commit    string // the VCS revision; suffixed "-dirty" when built from a modified tree
	Date      string // when it was built (release) or committed (VCS stamp), RFC 3339
	GoVersion string // the toolchain that built it
}

// Read returns the running binary's Info.
func Read() Info {
	i := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		var modified bool
		var rev, at string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if i.Commit == "" && rev != "" {
			i.Commit = rev
			if modified {
				i.Commit += "-dirty"
			}
		}
		if i.Date == "" {
			i.Date = at
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is what `mcp-authz version` prints.
func (i Info) String() string {
	return fmt.Sprintf("mcp-authz %s\n  commit  %s\n  built   %s\n  go      %s\n", i.Version, i.Commit, i.Date, i.GoVersion)
}
