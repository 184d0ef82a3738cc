// Package configtest helps the tests of a network type's configuration,
// in the protocol package that owns it.
package configtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

// BadConfig is a configuration that must not load, and lines its error
// must hold ("networks.x.server: required").
type BadConfig struct {
	Name string
	YAML string
	Env  map[string]string
	Want []string
}

// RunBad parses each config (with its Env as the environment) and checks
// that it fails with every wanted line.
func RunBad(t *testing.T, cases []BadConfig) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			c, err := config.ParseEnv([]byte(tt.YAML), tt.Env)
			if err == nil {
				t.Fatalf("no error; config:\n%s", c)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.Want {
				if !slices.Contains(lines, w) {
					t.Errorf("error lacks line\n\t%s\ngot:\n\t%s", w, strings.Join(lines, "\n\t"))
				}
			}
		})
	}
}
