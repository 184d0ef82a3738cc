package matrix

import (
	"context"
	"sync"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestConformance(t *testing.T) {
	s := newServer(t)
	owner := s.Client(t, "owner")
	rid := owner.NewRoom(true, "")
	humans := 0
	adapterstest.Run(t, adapterstest.Harness{
		Network: "matrix",
		Room:    string(rid),
		New: func(t *testing.T) adapters.Adapter {
			return newAdapter(t, s)
		},
		Human: func(t *testing.T) adapterstest.Human {
			humans++
			c := s.Client(t, "human"+string(rune('a'+humans)))
			c.Join(string(rid))
			return &confHuman{c: c, room: rid, names: map[id.UserID]string{}}
		},
		Restart: func(t *testing.T) { s.Restart(t) },
	})
}

// confHuman is a person in the conformance room: each WaitFor returns a
// message after the one it returned last.
type confHuman struct {
	c     *testenv.MatrixClient
	room  id.RoomID
	mu    sync.Mutex
	next  int
	names map[id.UserID]string
}

func (h *confHuman) Say(text string) error {
	_, err := h.c.Send(h.room, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
	return err
}

func (h *confHuman) WaitFor(ctx context.Context, match func(adapterstest.Line) bool) (adapterstest.Line, error) {
	h.mu.Lock()
	from := h.next
	h.mu.Unlock()
	var found adapterstest.Line
	_, i, err := h.c.WaitFor(ctx, from, func(e *event.Event) bool {
		if e.RoomID != h.room || e.Type != event.EventMessage || e.Sender == h.c.UserID {
			return false
		}
		found = adapterstest.Line{From: h.name(e.Sender), Text: e.Content.AsMessage().Body}
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

func (h *confHuman) name(u id.UserID) string {
	if n, ok := h.names[u]; ok {
		return n
	}
	n := h.c.DisplayName(u)
	if n == "" {
		n = u.String()
	}
	h.names[u] = n
	return n
}
