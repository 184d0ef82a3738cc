package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest/loopnet"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
	"github.com/switchboard-chat/switchboard/service"
)

// TestNewNetworkType: a network type from a package of its own, registered
// by the test (nothing in config/ or here knows it), is checked by
// "switchboard check" with its keys' paths and relays messages when run.
func TestNewNetworkType(t *testing.T) {
	loopnet.Register()
	a, b := loopnet.NewHub("newtype-a", ""), loopnet.NewHub("newtype-b", "hub-b-token")
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	dir := t.TempDir()
	good := fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  one: { type: loopnet, hub: newtype-a }
  two: { type: loopnet, hub: newtype-b, nick: bridge, token: "${HUB_B_TOKEN}" }
links:
  lobby: [ "one:lobby", "two:lobby" ]
`, dir)
	t.Setenv("HUB_B_TOKEN", "hub-b-token")
	for _, c := range []struct {
		name, config, want string // want: in stderr; "" for a valid config
	}{
		{"valid", good, ""},
		{"no hub", strings.Replace(good, "hub: newtype-a", "hubb: newtype-a", 1),
			"networks.one.hub: required (the name of a hub)\nnetworks.one.hubb: unknown key for a network of type loopnet"},
		{"bad room", strings.Replace(good, `"two:lobby"`, `"two:Lobby"`, 1),
			`links.lobby[1]: invalid loopnet room "Lobby": a loopnet room is lowercase letters, digits and -`},
	} {
		t.Run("check "+c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := cli([]string{"check", "--config", path}, &stdout, &stderr)
			switch {
			case c.want == "" && code != 0:
				t.Fatalf("exit %d for a valid config: %s", code, stderr.String())
			case c.want != "" && code == 0:
				t.Fatalf("exit 0 for a bad config; stdout %q", stdout.String())
			case !strings.Contains(stderr.String(), c.want):
				t.Errorf("stderr %q does not say %q", stderr.String(), c.want)
			}
		})
	}

	cfg, err := config.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.Start(context.Background(), cfg, testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop(context.Background()) })
	alice, bob := a.Join("lobby", "alice"), b.Join("lobby", "bob")
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Patience)
	defer cancel()
	say := func(from *loopnet.Member, to *loopnet.Member, text string) loopnet.Line {
		t.Helper()
		if err := from.Say(text); err != nil {
			t.Fatal(err)
		}
		l, err := to.WaitFor(ctx, func(l loopnet.Line) bool { return strings.Contains(l.Text, text) })
		if err != nil {
			t.Fatalf("%s never saw %q: %v", to.Nick, text, err)
		}
		return l
	}
	if l := say(alice, bob, "hello from hub a"); l.From != "bridge" || l.Text != "<alice> hello from hub a" {
		t.Errorf("bob saw %+v, want the bot relaying alice", l)
	}
	if l := say(bob, alice, "and back"); l.From != "switchboard" || l.Text != "<bob> and back" {
		t.Errorf("alice saw %+v, want the bot relaying bob", l)
	}
	// Nothing else arrives: no echo of alice's own line.
	time.Sleep(200 * time.Millisecond)
	select {
	case l := <-alice.Lines():
		t.Errorf("alice saw an extra line %+v", l)
	default:
	}
}
