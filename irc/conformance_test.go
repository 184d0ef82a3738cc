package irc

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestConformance(t *testing.T) {
	for _, mode := range []string{"puppet", "relay"} {
		t.Run(mode, func(t *testing.T) {
			srv := testenv.InspIRCd(t)
			humans := 0
			adapterstest.Run(t, adapterstest.Harness{
				Network: "libera",
				Room:    "#conformance",
				New: func(t *testing.T) adapters.Adapter {
					a, err := New("libera", netConfig(srv, mode), testLogger(t))
					if err != nil {
						t.Fatal(err)
					}
					return a
				},
				Human: func(t *testing.T) adapterstest.Human {
					humans++
					c := srv.Client(t, "human"+string(rune('a'+humans%26)))
					c.Join("#conformance")
					return &human{c: c, room: "#conformance"}
				},
				Restart: func(t *testing.T) { srv.Restart() },
			})
		})
	}
}

// human is a person on IRC for the conformance suite: each WaitFor
// returns a line after the one it returned last.
type human struct {
	c    *testenv.IRCClient
	room string

	mu   sync.Mutex
	next int
}

func (h *human) Say(text string) error {
	return h.c.Conn.Send("PRIVMSG", h.room, text)
}

func (h *human) WaitFor(ctx context.Context, match func(adapterstest.Line) bool) (adapterstest.Line, error) {
	h.mu.Lock()
	from := h.next
	h.mu.Unlock()
	timeout := waitFor
	if d, ok := ctx.Deadline(); ok {
		timeout = max(0, time.Until(d))
	}
	var found adapterstest.Line
	i, _, err := h.c.WaitIndex(from, timeout, func(l testenv.IRCLine) bool {
		if (l.Command != "PRIVMSG" && l.Command != "NOTICE") || !strings.EqualFold(l.Target(), h.room) {
			return false
		}
		found = adapterstest.Line{From: l.Nick(), Text: stripCodes(strings.Trim(l.Text(), "\x01"))}
		return match(found)
	})
	if err != nil {
		return adapterstest.Line{}, err
	}
	h.mu.Lock()
	h.next = i + 1
	h.mu.Unlock()
	return found, nil
}
