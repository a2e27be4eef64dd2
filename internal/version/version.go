// Package version describes the build: the version and commit stamped in at
// link time (the Makefile's -ldflags), else what the Go toolchain recorded in
// the binary's build info (the VCS revision of a `go build` in a checkout, the
// module version of a `go install pkg@version`).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by -ldflags "-X github.com/gatehouse-registry/gatehouse/internal/version.Version=...".
var (
	Version = "dev"
	Commit  = ""
)

// Info is what is known about a build.
type Info struct {
	Version    string // a release tag, git describe output, module version, or "dev"
	Commit     string // the full VCS revision, or "" when unknown
	Modified   bool   // the working tree had uncommitted changes
	CommitTime string // the revision's commit time (RFC 3339), or ""
	GoVersion  string // the toolchain that built the binary
	Platform   string // GOOS/GOARCH
}

// Get combines the link-time variables with bi, the binary's build info
// (nil when there is none). Link-time values win; the build info fills in
// what they leave open.
func Get(bi *debug.BuildInfo) Info {
	info := Info{
		Version:   Version,
		Commit:    Commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	var revision, goos, goarch string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		case "vcs.time":
			info.CommitTime = s.Value
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		info.Platform = goos + "/" + goarch
	}
	switch info.Commit {
	case "":
		info.Commit, info.Modified = revision, modified
	case revision:
		// The stamped commit is the checkout the toolchain saw: its state
		// is known.
		info.Modified = modified
	default:
		// Stamped from elsewhere (a build without the checkout, such as
		// a container build): the recorded time belongs to no known commit.
		info.CommitTime = ""
	}
	if info.Version == "dev" {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
	}
	return info
}

// String returns a one-line description of the build, such as
// "gatehouse v1.2.0 (commit 4e66a36...-dirty, committed 2026-01-02T03:04:05Z, go1.26.0 linux/amd64)".
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gatehouse %s (commit ", i.Version)
	if i.Commit == "" {
		b.WriteString("unknown")
	} else {
		b.WriteString(i.Commit)
		if i.Modified {
			b.WriteString("-dirty")
		}
	}
	if i.CommitTime != "" {
		fmt.Fprintf(&b, ", committed %s", i.CommitTime)
	}
	fmt.Fprintf(&b, ", %s %s)", i.GoVersion, i.Platform)
	return b.String()
}

// String describes the running binary's build.
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return Get(bi).String()
}
