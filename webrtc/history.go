package webrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/wire"
)

var _ adapters.HistoryUser = (*Adapter)(nil)

// UseHistory has peers joining a room get the link's last messages
// (config history) before anything else.
func (a *Adapter) UseHistory(h adapters.History) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.history = h
}

// historyWait bounds the store's answer: a peer waits for it before it
// sees the room's traffic.
const historyWait = 5 * time.Second

// historyFrame is one message of the history a peer gets after its
// welcome, oldest first: the event as live ones come, edited as it stands
// now (Edited is the time of its last edit). historyEndFrame follows the
// last, also when there was none.
type historyFrame struct {
	Type   string          `json:"type"` // "history"
	Event  json.RawMessage `json:"event"`
	Edited string          `json:"edited,omitempty"`
}

type historyEndFrame struct {
	Type  string `json:"type"` // "history_end"
	Count int    `json:"count"`
}

// sendHistory sends the link's last messages to a peer that just said
// hello, unless there is no history to give, and returns the ids of the
// messages sent. It reads the history after the peer joined the room,
// with what still waits for delivery to it: a message is in the history,
// or its live frame waits behind it, or both (see release).
func (p *peer) sendHistory() map[string]bool {
	a := p.a
	a.mu.Lock()
	h, ctx := a.history, a.ctx
	a.mu.Unlock()
	if h == nil || a.cfg.History <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, historyWait)
	defer cancel()
	entries, err := h.Recent(ctx, p.room.name, a.cfg.History, true)
	if err != nil {
		// The room's traffic goes on; the peer only misses the past.
		a.log.Warn("history for a new peer", "room", p.room.name, "err", err)
	}
	frames := make([][]byte, 0, len(entries))
	sent := make(map[string]bool, len(entries))
	a.mu.Lock()
	for _, e := range entries {
		ev, err := wire.Encode(e.Message)
		if err != nil {
			continue
		}
		f := historyFrame{Type: "history", Event: ev}
		if !e.Edited.IsZero() {
			f.Edited = e.Edited.UTC().Format("2006-01-02T15:04:05.000Z07:00") // as wire has ts
		}
		frames = append(frames, encodeFrame(f))
		sent[string(e.Message.ID)] = true
		// The peer may edit and delete its own messages of the history.
		p.room.authors.add(string(e.Message.ID), e.Message.Sender)
	}
	a.mu.Unlock()
	for _, f := range frames {
		p.transmit(f)
	}
	p.transmit(encodeFrame(historyEndFrame{Type: "history_end", Count: len(frames)}))
	return sent
}

// release ends the holding of a peer's traffic: what waited goes out, in
// order, but for the messages the history had (shown), and then what
// comes goes straight.
func (p *peer) release(shown map[string]bool) {
	for {
		p.mu.Lock()
		held := p.held
		p.held, p.heldBytes = nil, 0
		if len(held) == 0 {
			p.holding = false
			if len(shown) > 0 {
				p.shown, p.shownUntil = shown, time.Now().Add(shownFor)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, f := range held {
			if id := messageID(f); id != "" && shown[id] {
				delete(shown, id)
				continue
			}
			p.transmit(f)
		}
	}
}

// shownFor is how long after a peer's history its messages' live copies
// are still left out: a live copy later than that (the room's delivery
// waited out an outage) shows twice.
const shownFor = time.Minute

// messageID is the event id of a message frame, "" for any other frame.
func messageID(frame []byte) string {
	if !bytes.Contains(frame, []byte(`"message"`)) {
		return ""
	}
	var ev struct{ Type, ID string }
	if json.Unmarshal(frame, &ev) != nil || ev.Type != "message" {
		return ""
	}
	return ev.ID
}
