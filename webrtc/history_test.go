package webrtc

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// raceHistory is a History whose query races the room's traffic: while
// it is read, the adapter delivers a message it also returns, and one
// it does not (said just after).
type raceHistory struct {
	a    *Adapter
	old  *bridge.Message // in the history and live
	next *bridge.Message // live only
}

func (h *raceHistory) Recent(ctx context.Context, room string, n int, queued bool) ([]bridge.HistoryEntry, error) {
	if !queued || n != 50 {
		panic("the web page wants what is queued too, config history")
	}
	for _, m := range []*bridge.Message{h.old, h.next} {
		if _, err := h.a.Send(ctx, &bridge.Delivery{Room: room, Event: m}); err != nil {
			return nil, err
		}
	}
	return []bridge.HistoryEntry{{Message: h.old, Edited: h.old.Time.Add(time.Minute)}}, nil
}

func (h *raceHistory) Posted(context.Context, string, bridge.EventID, string) error {
	panic("the page records nothing")
}

// A peer gets the welcome, then the history, then the live traffic that
// came meanwhile, without the copies of what the history had.
func TestHistoryBeforeLiveTraffic(t *testing.T) {
	cfg := testConfig()
	cfg.History = 50
	a := newAdapter(t, cfg)
	said := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msg := func(id, text string) *bridge.Message {
		return &bridge.Message{Header: bridge.Header{ID: bridge.EventID(id), Origin: bridge.Origin{Network: "libera", Room: "#lobby"},
			Sender: bridge.Sender{Network: "libera", ID: "bob", Name: "bob"}, Time: said}, Text: text}
	}
	a.UseHistory(&raceHistory{a: a, old: msg("ev-old", "edited earlier"), next: msg("ev-next", "said meanwhile")})
	s := startAdapter(t, a, "lobby")
	alice := testenv.MustDialWebRTC(t, s.url, "lobby", "", "alice", "alice-1")
	alice.Wait(t, wait, "the message said meanwhile", func(f testenv.WebRTCFrame) bool { return f.Text == "said meanwhile" })
	var got []string
	for _, f := range alice.Frames() {
		switch f.Type {
		case "history":
			var ev testenv.WebRTCFrame
			var ts struct{ TS string }
			json.Unmarshal(f.Event, &ev)
			json.Unmarshal(f.Event, &ts)
			if ts.TS != "2026-01-02T03:04:05.000Z" || f.Edited != "2026-01-02T03:05:05.000Z" || ev.Sender.Name != "bob" {
				t.Errorf("history frame %s: want bob's message at its time, edited a minute later", f.Raw)
			}
			got = append(got, "history: "+ev.Text)
		case "message":
			got = append(got, "live: "+f.Text)
		default:
			got = append(got, f.Type)
		}
	}
	want := []string{"welcome", "history: edited earlier", "history_end", "live: said meanwhile"}
	if !slices.Equal(got, want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
}
