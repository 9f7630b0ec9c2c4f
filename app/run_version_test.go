package app

import (
	"runtime/debug"
	"testing"
)

// TestBuildVersionNamesTheReleaseElseTheCommit pins what a binary built without -ldflags reports
// (the real `go build` is main_test.go's TestPlainGoBuildReportsItsRevision).
func TestBuildVersionNamesTheReleaseElseTheCommit(t *testing.T) {
	const rev = "07c9101fb3ab5c2d9e0f1a2b3c4d5e6f7a8b9c0d"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name     string
		version  string
		settings []debug.BuildSetting
		noInfo   bool
		want     string
	}{
		{name: "no build info", noInfo: true, want: "dev"},
		{name: "devel without vcs (-buildvcs=false)", version: "(devel)", want: "dev"},
		{name: "devel at a clean commit", version: "(devel)", settings: vcs("false"), want: "07c9101fb3ab"},
		{name: "devel with changes", version: "(devel)", settings: vcs("true"), want: "07c9101fb3ab-dirty"},
		{name: "go 1.24 pseudo-version: the commit", version: "v0.0.0-20261202035219-07c9101fb3ab+dirty", settings: vcs("true"), want: "07c9101fb3ab-dirty"},
		{name: "pseudo-version after a tag", version: "v1.2.4-0.20261202035219-07c9101fb3ab", settings: vcs("false"), want: "07c9101fb3ab"},
		{name: "pseudo-version without vcs (go install @commit)", version: "v1.2.4-0.20261202035219-07c9101fb3ab", want: "v1.2.4-0.20261202035219-07c9101fb3ab"},
		{name: "go install at a release", version: "v1.2.3", want: "v1.2.3"},
		{name: "build at a tagged commit", version: "v1.2.3", settings: vcs("false"), want: "v1.2.3"},
		{name: "pre-release", version: "v1.3.0-rc.1", settings: vcs("false"), want: "v1.3.0-rc.1"},
		{name: "tagged with changes", version: "v1.2.3+dirty", settings: vcs("true"), want: "v1.2.3+dirty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var info *debug.BuildInfo
			if !tc.noInfo {
				info = &debug.BuildInfo{Main: debug.Module{Path: "github.com/authkeeper/authkeeper", Version: tc.version}, Settings: tc.settings}
			}
			if got := buildVersion(info, !tc.noInfo); got != tc.want {
				t.Errorf("buildVersion = %q, want %q", got, tc.want)
			}
		})
	}
}
