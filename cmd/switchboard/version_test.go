package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// The build info's module version and VCS settings make the version, the
// commit and its time; -ldflags values win.
func TestDescribeBuild(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "-buildmode", Value: "exe"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	for _, c := range []struct {
		name                  string
		info                  *debug.BuildInfo
		ldVersion, ldCommit   string
		version, commit, when string
	}{
		{"no build info", nil, "", "", "(devel)", "unknown", ""},
		{"go install @v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "", "", "v1.2.3", "unknown", ""},
		{"go build, no VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "", "(devel)", "unknown", ""},
		{"go build -buildvcs=true", stamped, "", "", "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-01-02T03:04:05Z, modified"},
		{"ldflags", stamped, "v9.9.9", "abc1234", "v9.9.9", "abc1234", "2026-01-02T03:04:05Z, modified"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, commit, when := describeBuild(c.info, c.ldVersion, c.ldCommit)
			if v != c.version || commit != c.commit || when != c.when {
				t.Errorf("got %q, %q, %q; want %q, %q, %q", v, commit, when, c.version, c.commit, c.when)
			}
		})
	}
}

// `switchboard version` of a binary built as the README says, from a git
// checkout (a copy of this tree committed into a fresh repository), names
// the commit and its time, and says when the tree had changes; built
// without VCS stamping it is (devel); -ldflags set both.
func TestVersionOfABuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary four times")
	}
	gitBin := testenv.Need(t, "git")
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	copyModule(t, repo)
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "a release")
	rev := git("rev-parse", "HEAD")

	// -trimpath, as the README builds, also lets this copy share the
	// build cache with other builds: paths are not part of the key then.
	build := func(flags ...string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "switchboard")
		cmd := exec.Command("go", append(append([]string{"build", "-trimpath", "-o", bin}, flags...), "./cmd/switchboard")...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", strings.Join(flags, " "), err, out)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("switchboard version: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// The go command makes a pseudo-version of the commit (there is no
	// tag), and adds +dirty to it when the tree has changes.
	pseudo := "v0.0.0-20260102030405-" + rev[:12]
	if got, want := build("-buildvcs=true"), fmt.Sprintf("switchboard %s (commit %s, 2026-01-02T03:04:05Z)", pseudo, rev); got != want {
		t.Errorf("from a clean checkout:\n got %s\nwant %s", got, want)
	}
	testenv.WriteFile(t, repo, "notes.txt", "not committed\n")
	if got, want := build("-buildvcs=true"), fmt.Sprintf("switchboard %s+dirty (commit %s, 2026-01-02T03:04:05Z, modified)", pseudo, rev); got != want {
		t.Errorf("from a checkout with changes:\n got %s\nwant %s", got, want)
	}
	if got, want := build("-buildvcs=false"), "switchboard (devel) (commit unknown)"; got != want {
		t.Errorf("without VCS stamping:\n got %s\nwant %s", got, want)
	}
	if got, want := build("-buildvcs=false", "-ldflags", "-X main.version=v1.2.3 -X main.commit=abc1234"), "switchboard v1.2.3 (commit abc1234)"; got != want {
		t.Errorf("with -ldflags:\n got %s\nwant %s", got, want)
	}
}

// copyModule copies this module's files (those git tracks, and new ones
// it does not ignore) into dir.
func copyModule(t *testing.T, dir string) {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = strings.TrimSpace(string(root))
	files, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(cmd.Dir, name))
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
