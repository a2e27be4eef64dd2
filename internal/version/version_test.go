package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

const (
	rev   = "4e66a362b0ec799e4e66a362b0ec799e4e66a362"
	other = "0123456789abcdef0123456789abcdef01234567"
)

func buildInfo(mainVersion string, settings ...string) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/gatehouse-registry/gatehouse", Version: mainVersion}}
	for i := 0; i+1 < len(settings); i += 2 {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
	}
	return bi
}

func TestGet(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name            string
		version, commit string // the link-time variables
		bi              *debug.BuildInfo
		want            string
	}{
		{
			name: "no build info, nothing stamped",
			bi:   nil, version: "dev",
			want: "gatehouse dev (commit unknown, " + runtime.Version() + " " + platform + ")",
		},
		{
			name: "go build in a clean checkout",
			bi: buildInfo("(devel)", "GOOS", "linux", "GOARCH", "arm64",
				"vcs", "git", "vcs.revision", rev, "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false"),
			version: "dev",
			want:    "gatehouse dev (commit " + rev + ", committed 2026-01-02T03:04:05Z, go1.26.1 linux/arm64)",
		},
		{
			name: "go build in a modified checkout",
			bi: buildInfo("", "GOOS", "linux", "GOARCH", "amd64",
				"vcs.revision", rev, "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "true"),
			version: "dev",
			want:    "gatehouse dev (commit " + rev + "-dirty, committed 2026-01-02T03:04:05Z, go1.26.1 linux/amd64)",
		},
		{
			name:    "go install pkg@version: the module version, no VCS",
			bi:      buildInfo("v1.2.3", "GOOS", "linux", "GOARCH", "amd64"),
			version: "dev",
			want:    "gatehouse v1.2.3 (commit unknown, go1.26.1 linux/amd64)",
		},
		{
			name: "the Makefile's stamps win, the checkout's state is kept",
			bi: buildInfo("v0.0.0-20260102030405-4e66a362b0ec+dirty", "GOOS", "linux", "GOARCH", "amd64",
				"vcs.revision", rev, "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "true"),
			version: "v0.9.0-3-g4e66a36-dirty", commit: rev,
			want: "gatehouse v0.9.0-3-g4e66a36-dirty (commit " + rev + "-dirty, committed 2026-01-02T03:04:05Z, go1.26.1 linux/amd64)",
		},
		{
			name:    "stamped without a checkout (container build)",
			bi:      buildInfo("(devel)", "GOOS", "linux", "GOARCH", "amd64"),
			version: "v1.0.0", commit: rev,
			want: "gatehouse v1.0.0 (commit " + rev + ", go1.26.1 linux/amd64)",
		},
		{
			name: "a stamped commit other than the checkout's is not given its state",
			bi: buildInfo("(devel)", "GOOS", "linux", "GOARCH", "amd64",
				"vcs.revision", other, "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "true"),
			version: "v1.0.0", commit: rev,
			want: "gatehouse v1.0.0 (commit " + rev + ", go1.26.1 linux/amd64)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldV, oldC := Version, Commit
			t.Cleanup(func() { Version, Commit = oldV, oldC })
			Version, Commit = tt.version, tt.commit
			if got := Get(tt.bi).String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
