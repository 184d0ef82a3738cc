package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Snippet is docs/snippets/name, a server config a setup guide shows,
// with each of the guide's example values (the keys of vars: a domain,
// a port line, a placeholder secret) replaced for the test. Tests start
// servers with it, so a guide cannot drift from what is tested; a value
// the snippet no longer contains fails the test instead of being
// silently kept.
func Snippet(t testing.TB, name string, vars map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(docsDir(t), "snippets", name))
	if err != nil {
		t.Fatalf("snippet: %v", err)
	}
	s := string(data)
	for from, to := range vars {
		if !strings.Contains(s, from) {
			t.Fatalf("snippet %s: %q not found; update the test with the guide", name, from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

// docsDir is the repository's docs directory, found from this source
// file's path so that any package's tests can read it.
func docsDir(t testing.TB) string {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("docs: no source path")
	}
	return filepath.Join(filepath.Dir(here), "..", "..", "docs")
}
