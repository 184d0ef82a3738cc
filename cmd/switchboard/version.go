package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version and commit say which Switchboard this is, in `switchboard
// version`, /api/status and /status. Packagers building from a tree
// without its git history may set them: -ldflags "-X main.version=v1.2.3
// -X main.commit=abc1234"; left empty, init takes them from the build
// info the go command wrote into the binary.
var (
	version string
	commit  string
	// built is when the commit was made, and whether the tree had
	// changes not committed, as the build info says ("" if it does not).
	built string
)

func init() {
	info, _ := debug.ReadBuildInfo()
	version, commit, built = describeBuild(info, version, commit)
}

// describeBuild reads the build info. The module version is what `go
// install …@v1.2.3` built (v1.2.3), a pseudo-version when `go build`
// ran in a git checkout with -buildvcs=true, else "(devel)". The
// revision, its time and "modified" are there only when the go command
// stamped them (-buildvcs=true in a git checkout; this machine's go.env
// sets -buildvcs=false, and `go install …@v` never does). An override
// given by -ldflags wins.
func describeBuild(info *debug.BuildInfo, overrideVersion, overrideCommit string) (version, commit, built string) {
	version, commit = "(devel)", "unknown"
	var when []string
	if info != nil {
		if v := info.Main.Version; v != "" {
			version = v
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if r := settings["vcs.revision"]; r != "" {
			commit = r
		}
		if t := settings["vcs.time"]; t != "" {
			when = append(when, t)
		}
		if settings["vcs.modified"] == "true" {
			when = append(when, "modified")
		}
	}
	if overrideVersion != "" {
		version = overrideVersion
	}
	if overrideCommit != "" {
		commit = overrideCommit
	}
	return version, commit, strings.Join(when, ", ")
}

// versionLine is what `switchboard version` prints.
func versionLine() string {
	line := fmt.Sprintf("switchboard %s (commit %s", version, commit)
	if built != "" {
		line += ", " + built
	}
	return line + ")"
}
