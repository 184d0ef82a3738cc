package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/wire"
)

// The one inbox on the web page: a direct message to a person's web
// account (what someone writes to an account of theirs that Switchboard
// holds elsewhere, when the page is their home) is shown on every page
// they have open with their personal token, as a private conversation
// with the writer, apart from the room. What they answer there is a
// direct message from their web account to the writer, which the router
// sends from their own account on the writer's network.

var _ bridge.DirectMessenger = (*Adapter)(nil)

// DirectMessages says the adapter takes direct events: those to a
// person's web account.
func (a *Adapter) DirectMessages() {}

// directFrame is a private message on a person's page: one they were
// sent (With is the writer) or one they sent from a page of theirs (With
// is the recipient), so that every page of theirs shows the whole
// conversation. Event has the shape of an event frame.
type directFrame struct {
	Type  string          `json:"type"` // "direct"
	With  directPeer      `json:"with"`
	Event json.RawMessage `json:"event"`
}

// directPeer is the other side of a private conversation: the network
// and id a direct message to them carries, and the name to show.
type directPeer struct {
	Network string `json:"network"`
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
}

// errPageClosed is retried: the message waits in the outbox until a page
// of the person's opens (sayHello wakes it).
var errPageClosed = fmt.Errorf("no page of theirs is open: %w", bridge.ErrNotConnected)

// deliverDirect shows a direct event to the pages of its recipient, a
// person's web account. A message waits, retried, while none is open;
// anything else (typing, an edit) is for the pages open now, if any.
func (a *Adapter) deliverDirect(d *bridge.Delivery) (string, error) {
	h := d.Event.Head()
	to := h.To
	if to.Network != a.name {
		return "", bridge.Permanent(fmt.Errorf("webrtc: direct event for network %q", to.Network))
	}
	if !a.personalID(to.ID) {
		return "", bridge.Permanent(fmt.Errorf("webrtc: %s is no person's web account: only a person's page takes direct messages", to.ID))
	}
	frame, err := directFrameOf(d.Event, directPeer{Network: h.Origin.Network, ID: h.Sender.ID, Name: h.Sender.Shown(nil)})
	if err != nil {
		return "", bridge.Permanent(err)
	}
	a.mu.Lock()
	peers := a.personalPeers(to.ID)
	// In a cluster their pages may be open on other instances.
	remote := a.remoteID(to.ID, true)
	a.mu.Unlock()
	if len(peers) == 0 && !remote {
		if _, ok := d.Event.(*bridge.Message); ok {
			return "", errPageClosed
		}
		return "", nil
	}
	for _, p := range peers {
		p.sendRaw(frame)
	}
	a.publish(relayEnvelope{Kind: relayPerson, To: to.ID, Frame: frame})
	return string(h.ID), nil
}

func directFrameOf(ev bridge.Event, with directPeer) ([]byte, error) {
	raw, err := wire.Encode(ev)
	if err != nil {
		return nil, fmt.Errorf("webrtc: encode %s event: %w", ev.Kind(), err)
	}
	return encodeFrame(directFrame{Type: "direct", With: with, Event: raw}), nil
}

// personalPeers are the open sessions verified by the personal token of
// the web account id, in any room; a.mu is held.
func (a *Adapter) personalPeers(id string) []*peer {
	var out []*peer
	for _, p := range a.peersByID(id) {
		if p.person != nil && strings.EqualFold(p.person.ID, id) {
			out = append(out, p)
		}
	}
	return out
}

// directTo is the recipient of a direct frame from a page.
type directTo struct {
	Network string `json:"network"`
	ID      string `json:"id"`
	Name    string `json:"name"`
}

// directMessage is the event of a page's direct frame: only a person
// verified by their token writes privately, to someone of another
// network (their answer in a conversation of their inbox).
func (p *peer) directMessage(f inFrame, h bridge.Header) (*bridge.Message, error) {
	if p.person == nil {
		return nil, errors.New("only a person who joined with their personal token has direct messages")
	}
	if f.To == nil || f.To.Network == "" || f.To.ID == "" {
		return nil, errors.New("a direct message needs to.network and to.id")
	}
	if f.To.Network == p.a.name {
		return nil, errors.New("direct messages go to someone of another network")
	}
	for field, v := range map[string]string{"to.network": f.To.Network, "to.id": f.To.ID, "to.name": f.To.Name} {
		if len(v) > 255 || strings.ContainsFunc(v, unicode.IsControl) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%s: at most 255 bytes, no control characters", field)
		}
	}
	if strings.TrimSpace(f.Text) == "" {
		return nil, errors.New("a message needs text")
	}
	return &bridge.Message{Header: h, Text: f.Text}, nil
}

// sendDirect hands a page's direct message to the router and shows it on
// every page of the person's, in the conversation with its recipient.
func (p *peer) sendDirect(f inFrame) {
	a := p.a
	h := p.header()
	m, err := p.directMessage(f, h)
	if err != nil {
		p.sendError(codeInvalid, "%v", err)
		return
	}
	m.To = &bridge.Sender{Network: f.To.Network, ID: f.To.ID, Name: f.To.Name}
	ctx, cancel := context.WithTimeout(a.ctx, acceptWait)
	defer cancel()
	if err := a.in.Accept(ctx, m); err != nil {
		a.log.Warn("direct message not accepted", "to", f.To.Network, "err", err)
		p.sendError(codeUnavailable, "not accepted, try again")
		return
	}
	frame, err := directFrameOf(m, directPeer{Network: f.To.Network, ID: f.To.ID, Name: f.To.Name})
	if err != nil {
		return
	}
	a.mu.Lock()
	peers := a.personalPeers(p.person.ID)
	a.mu.Unlock()
	for _, o := range peers {
		o.sendRaw(frame)
	}
	a.publish(relayEnvelope{Kind: relayPerson, To: p.person.ID, Frame: frame})
}
