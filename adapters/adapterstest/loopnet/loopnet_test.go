package loopnet_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest/loopnet"
	"github.com/switchboard-chat/switchboard/config"
)

// human is a person on a hub, as the conformance suite needs one.
type human struct{ m *loopnet.Member }

func (h human) Say(text string) error { return h.m.Say(text) }

func (h human) WaitFor(ctx context.Context, match func(adapterstest.Line) bool) (adapterstest.Line, error) {
	l, err := h.m.WaitFor(ctx, func(l loopnet.Line) bool { return match(adapterstest.Line(l)) })
	return adapterstest.Line(l), err
}

// TestConformance runs the suite every adapter passes against the test
// type, built from a config that went through Parse like any other.
func TestConformance(t *testing.T) {
	loopnet.Register()
	hub := loopnet.NewHub("conformance", "")
	t.Cleanup(hub.Close)
	cfg, err := config.ParseEnv([]byte(`
networks:
  loop: {type: loopnet, hub: conformance}
links:
  lobby: ["loop:lobby"]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	humans := 0
	adapterstest.Run(t, adapterstest.Harness{
		Network: "loop",
		Room:    "lobby",
		New: func(t *testing.T) adapters.Adapter {
			a, err := adapters.New("loop", cfg.Networks["loop"], slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			return a
		},
		Human: func(t *testing.T) adapterstest.Human {
			humans++
			m := hub.Join("lobby", fmt.Sprintf("human%d", humans))
			t.Cleanup(m.Leave)
			return human{m}
		},
	})
}

// TestConfig: the type's keys are defaulted, validated with their paths
// and redacted like those of the shipped types.
func TestConfig(t *testing.T) {
	loopnet.Register()
	c, err := config.ParseEnv([]byte(`
networks:
  loop: {type: loopnet, hub: h, token: "${TOKEN}"}
links:
  lobby: ["loop:lobby"]
`), map[string]string{"TOKEN": "s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	lc := c.Networks["loop"].Section.(*loopnet.Config)
	if lc.Nick != "switchboard" || lc.Token != "s3cret-token" {
		t.Errorf("config %+v", lc)
	}
	for _, s := range []string{c.String(), c.Networks["loop"].String(), lc.String(), fmt.Sprint(*lc)} {
		if strings.Contains(s, "s3cret-token") {
			t.Errorf("the token is shown: %s", s)
		}
	}
	_, err = config.ParseEnv([]byte(`
networks:
  loop: {type: loopnet, nick: "a b", hubb: x}
links:
  lobby: ["loop:Lobby!"]
`), nil)
	want := strings.Join([]string{
		`links.lobby[0]: invalid loopnet room "Lobby!": a loopnet room is lowercase letters, digits and -`,
		`networks.loop.hub: required (the name of a hub)`,
		`networks.loop.hubb: unknown key for a network of type loopnet`,
		`networks.loop.nick: "a b" contains a space or a control character`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}
