package all_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

// TestExampleUpToDate fails when switchboard.example.yaml is not what the
// packages' parts make of it: edit a part (config/example_*.yaml, a
// protocol package's example.yaml) and run go generate ./adapters/all.
func TestExampleUpToDate(t *testing.T) {
	have, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if want := config.Example(); !bytes.Equal(have, want) {
		t.Errorf("%s is stale: run go generate ./adapters/all", examplePath)
	}
}
