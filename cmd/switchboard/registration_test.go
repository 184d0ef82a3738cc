package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestMatrixRegistration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := `
http: { listen: "127.0.0.1:8090" }
networks:
  mx:
    type: matrix
    homeserver: http://127.0.0.1:8008
    domain: example.org
    as_token: the-as-token
    hs_token: the-hs-token
links:
  lobby: ["mx:#sb_lobby:example.org"]
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := cli([]string{"matrix-registration", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var reg struct {
		ID, URL         string
		AS              string `yaml:"as_token"`
		HS              string `yaml:"hs_token"`
		SenderLocalpart string `yaml:"sender_localpart"`
		RateLimited     *bool  `yaml:"rate_limited"`
		Namespaces      map[string][]struct {
			Regex     string
			Exclusive bool
		}
	}
	if err := yaml.Unmarshal(out.Bytes(), &reg); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if reg.ID != "switchboard" || reg.URL != "http://127.0.0.1:8090" || reg.AS != "the-as-token" || reg.HS != "the-hs-token" ||
		reg.SenderLocalpart != "switchboard" || reg.RateLimited == nil || *reg.RateLimited {
		t.Errorf("registration:\n%s", out.String())
	}
	users, aliases := reg.Namespaces["users"], reg.Namespaces["aliases"]
	if len(users) != 2 || !users[1].Exclusive || users[1].Regex != `@sb_.+_.+:example\.org` ||
		len(aliases) != 1 || aliases[0].Regex != `#sb_.*:example\.org` || !aliases[0].Exclusive {
		t.Errorf("namespaces: %+v", reg.Namespaces)
	}

	// Asking for a network that is not there, or not matrix, fails.
	out.Reset()
	errOut.Reset()
	if code := cli([]string{"matrix-registration", "--config", path, "--network", "nope"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `no network "nope"`) {
		t.Errorf("unknown network: exit %d, %q", code, errOut.String())
	}
	if code := cli([]string{"matrix-registration"}, &out, &errOut); code != 2 {
		t.Errorf("without --config: exit %d", code)
	}
}
