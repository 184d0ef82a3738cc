package xmpp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestConformance runs the adapters' shared cases on each XMPP server.
func TestConformance(t *testing.T) {
	for _, server := range testenv.XMPPServers {
		for _, mode := range []string{"puppet", "relay"} {
			t.Run(server.Name+"/"+mode, func(t *testing.T) {
				conformance(t, server.Start(t, testenv.XMPPServerConfig{Users: testUsers}), mode)
			})
		}
	}
}

func conformance(t *testing.T, srv *testenv.XMPPServer, mode string) {
	room := "conformance@" + srv.MUC
	humans := 0
	adapterstest.Run(t, adapterstest.Harness{
		Network: "jabber",
		Room:    room,
		New: func(t *testing.T) adapters.Adapter {
			a, _ := newTestAdapter(t, srv, setup{mode: mode})
			return a
		},
		Human: func(t *testing.T) adapterstest.Human {
			humans++
			return &confHuman{h: joinHuman(t, srv, "human", room, fmt.Sprintf("Human%d", humans))}
		},
		Restart: func(t *testing.T) { srv.Restart(t) },
	})
}

// confHuman is a person in the conformance room: each WaitFor returns a
// line after the one it returned last.
type confHuman struct {
	h    *human
	mu   sync.Mutex
	next int
}

func (c *confHuman) Say(text string) error {
	_, err := c.h.c.Say(c.h.room, text)
	return err
}

func (c *confHuman) WaitFor(ctx context.Context, match func(adapterstest.Line) bool) (adapterstest.Line, error) {
	c.mu.Lock()
	from := c.next
	c.mu.Unlock()
	timeout := waitFor
	if d, ok := ctx.Deadline(); ok {
		timeout = max(0, time.Until(d))
	}
	var found adapterstest.Line
	i, _, err := c.h.c.WaitIndex(from, timeout, func(s testenv.XMPPStanza) bool {
		if s.Kind() != "message" || s.Type() != "groupchat" || !strings.HasPrefix(s.From(), c.h.room.String()+"/") ||
			s.Nick() == c.h.nick || s.Child("", "body") == nil {
			return false
		}
		found = adapterstest.Line{From: s.Nick(), Text: s.Body()}
		return match(found)
	})
	if err != nil {
		return adapterstest.Line{}, err
	}
	c.mu.Lock()
	c.next = i + 1
	c.mu.Unlock()
	return found, nil
}
