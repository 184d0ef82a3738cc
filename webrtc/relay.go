package webrtc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/every"
)

// Cluster mode (issue 26): the adapter runs on every instance, and a
// page's peer lives on the instance it connected to. Every frame the
// adapter hands to the peers of a room or to a person's pages as it
// happens is handed to its own peers at once and also published on the
// relay; each other instance hands it to its own. The router delivers to
// the web network on one instance only (the lease holder), and a peer's
// own events are echoed by the instance it is on: both go out this way.
// What is sent to one peer alone (its welcome, its history, read from the
// shared store, its errors) is not relayed.
//
// Instances also tell each other which peers they have (the roster), so
// that a welcome names the room's peers on every instance, and the
// instance that delivers a direct message or a private notice knows
// whether the person has a page open anywhere.
//
// The relay is at most once (core NATS): a frame published while NATS is
// unreachable may reach the other instances' peers late or not at all.
// A page that reconnects gets the room's history from the store.

var (
	_ adapters.Everywhere = (*Adapter)(nil)
	_ adapters.RelayUser  = (*Adapter)(nil)
)

// RunsEverywhere: every instance serves the signaling and the page.
func (a *Adapter) RunsEverywhere() {}

// UseRelay has the adapter share live frames with the other instances of
// a cluster through r. It is called before Start.
func (a *Adapter) UseRelay(r adapters.Relay) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.relay = r
}

// Roster timing: each instance publishes its whole roster every
// rosterEvery, and forgets the peers of an instance it has heard nothing
// from for rosterExpiry (it died without a word).
const (
	rosterEvery  = 10 * time.Second
	rosterExpiry = 3 * rosterEvery
	// rosterChunk bounds the peers of one roster message, well under
	// NATS's default max_payload of 1 MB.
	rosterChunk = 2000
	// relayWait bounds one publish (the client buffers it; it waits only
	// while its buffer is full).
	relayWait = 5 * time.Second
)

// What a relayed envelope carries.
const (
	relayRoom   = "room"   // Frame for the peers of Room; Author wrote it
	relayPerson = "person" // Frame for the pages of the person whose web account is To
	relayNotice = "notice" // Notice to the peers that said hello as To, each in its room
	relayPeer   = "peer"   // Peers[0] joined (Up) or left
	relayRoster = "roster" // the sender's peers, after its earlier ones (Reset: instead of them)
	relayAsk    = "ask"    // a new instance asks for everyone's roster
)

type relayEnvelope struct {
	// From is the instance's origin id: it skips its own envelopes.
	From  string          `json:"from"`
	Kind  string          `json:"kind"`
	Room  string          `json:"room,omitempty"`
	To    string          `json:"to,omitempty"`
	Frame json.RawMessage `json:"frame,omitempty"`
	// Author is the sender of a message frame, which the room remembers
	// for checking its peers' edits and deletes.
	Author *bridge.Sender `json:"author,omitempty"`
	Notice string         `json:"notice,omitempty"`
	Time   time.Time      `json:"time,omitzero"`
	Up     bool           `json:"up,omitempty"`
	Reset  bool           `json:"reset,omitempty"`
	Peers  []rosterEntry  `json:"peers,omitempty"`
}

// rosterEntry is a peer of another instance that said hello.
type rosterEntry struct {
	Room string `json:"room"`
	// Key tells the sessions apart; it is not the session id, which
	// lets whoever knows it end the session.
	Key    string `json:"key"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Person string `json:"person,omitempty"`
}

// remoteInstance is what this instance knows of another's peers.
type remoteInstance struct {
	seen  time.Time
	peers map[string]rosterEntry // by Key
}

func newOrigin() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *Adapter) relayTopic() string { return "webrtc/" + a.name }

// entry is the peer as the other instances see it; p said hello.
func (p *peer) entry() rosterEntry {
	k := sha256.Sum256([]byte(p.session))
	return rosterEntry{Room: p.room.name, Key: hex.EncodeToString(k[:8]), ID: p.sender.ID, Name: p.sender.Name, Person: p.personID()}
}

// startRelay subscribes to the other instances' frames, asks for their
// rosters and keeps publishing its own until Stop.
func (a *Adapter) startRelay() error {
	a.mu.Lock()
	r, ctx := a.relay, a.ctx
	a.mu.Unlock()
	if r == nil {
		return nil
	}
	unsub, err := r.Subscribe(a.relayTopic(), a.fromRelay)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	a.mu.Lock()
	a.unrelay = func() { unsub(); <-done }
	a.mu.Unlock()
	a.publish(relayEnvelope{Kind: relayAsk})
	go func() {
		defer close(done)
		every.Run(ctx, rosterEvery, a.publishRoster)
	}()
	return nil
}

// stopRelay tells the others this instance has no peers any more and
// stops listening; a.ctx is cancelled.
func (a *Adapter) stopRelay() {
	a.mu.Lock()
	stop := a.unrelay
	a.unrelay = nil
	a.mu.Unlock()
	if stop == nil {
		return
	}
	a.publish(relayEnvelope{Kind: relayRoster, Reset: true})
	stop()
}

// publish sends an envelope to the other instances, if there are any.
func (a *Adapter) publish(env relayEnvelope) {
	a.mu.Lock()
	r, ctx := a.relay, a.ctx
	a.mu.Unlock()
	if r == nil || ctx == nil {
		return
	}
	env.From = a.origin
	data, err := json.Marshal(env)
	if err != nil {
		a.log.Warn("relay: encode", "kind", env.Kind, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), relayWait)
	defer cancel()
	if err := r.Publish(ctx, a.relayTopic(), data); err != nil {
		a.log.Warn("relay: publish; the other instances' peers miss it", "kind", env.Kind, "room", env.Room, "err", err)
	}
}

// relayRoomFrame publishes a frame the room's own peers were given.
func (a *Adapter) relayRoomFrame(room string, frame []byte, author *bridge.Sender) {
	a.publish(relayEnvelope{Kind: relayRoom, Room: room, Frame: frame, Author: author})
}

// publishPeer tells the others that p, which said hello, joined or left.
func (a *Adapter) publishPeer(p *peer, up bool) {
	a.relayMu.Lock()
	defer a.relayMu.Unlock()
	a.publish(relayEnvelope{Kind: relayPeer, Up: up, Peers: []rosterEntry{p.entry()}})
}

// publishRoster sends this instance's peers, in chunks.
func (a *Adapter) publishRoster() {
	// A join or leave published after the roster was read goes out after
	// it, so the others end up with what is true.
	a.relayMu.Lock()
	defer a.relayMu.Unlock()
	a.mu.Lock()
	var all []rosterEntry
	for _, p := range a.sessions {
		p.mu.Lock()
		hello := p.hello && !p.closed
		p.mu.Unlock()
		if hello && !p.room.left {
			all = append(all, p.entry())
		}
	}
	a.mu.Unlock()
	for i := 0; i == 0 || i < len(all); i += rosterChunk {
		a.publish(relayEnvelope{Kind: relayRoster, Reset: i == 0, Peers: all[i:min(i+rosterChunk, len(all))]})
	}
}

// fromRelay hands what another instance published to this one's peers.
func (a *Adapter) fromRelay(data []byte) {
	var env relayEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		a.log.Warn("relay: undecodable envelope", "err", err)
		return
	}
	if env.From == a.origin || env.From == "" {
		return // this instance's own peers had it already
	}
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	ri := a.remote[env.From]
	if ri == nil {
		ri = &remoteInstance{peers: map[string]rosterEntry{}}
		a.remote[env.From] = ri
	}
	ri.seen = time.Now()
	var peers []*peer
	online := false
	switch env.Kind {
	case relayRoom:
		if r := a.rooms[env.Room]; r != nil {
			if env.Author != nil {
				if id := messageID(env.Frame); id != "" {
					r.authors.add(id, *env.Author)
				}
			}
			peers = r.list()
		}
	case relayPerson:
		peers = a.personalPeers(env.To)
	case relayNotice:
		peers = a.peersByID(env.To)
	case relayPeer:
		if len(env.Peers) == 1 {
			e := env.Peers[0]
			if env.Up {
				ri.peers[e.Key] = e
				// A person's page opened there: what waits for them here
				// may go now.
				online = e.Person != ""
			} else {
				delete(ri.peers, e.Key)
			}
		}
	case relayRoster:
		if env.Reset {
			ri.peers = map[string]rosterEntry{}
		}
		for _, e := range env.Peers {
			if _, known := ri.peers[e.Key]; !known && e.Person != "" {
				online = true
			}
			ri.peers[e.Key] = e
		}
	case relayAsk:
		defer a.publishRoster()
	}
	in := a.in
	a.mu.Unlock()
	if env.Kind == relayNotice {
		a.noticeTo(peers, env.Notice, env.Time)
		return
	}
	for _, p := range peers {
		p.sendRaw(env.Frame)
	}
	if online && in != nil {
		in.Online(a.name)
	}
}

// remotePeers are the peers of the other instances in a room (all rooms
// for ""), of those heard from lately; a.mu is held.
func (a *Adapter) remotePeers(room string) []rosterEntry {
	var out []rosterEntry
	for origin, ri := range a.remote {
		if time.Since(ri.seen) > rosterExpiry {
			delete(a.remote, origin)
			continue
		}
		for _, e := range ri.peers {
			if room == "" || e.Room == room {
				out = append(out, e)
			}
		}
	}
	return out
}

// remoteID reports whether another instance has a peer that said hello
// as id (a person's page, verified by their token, if person); a.mu is
// held.
func (a *Adapter) remoteID(id string, person bool) bool {
	for _, e := range a.remotePeers("") {
		if person && e.Person != "" && strings.EqualFold(e.ID, id) || !person && e.ID == id {
			return true
		}
	}
	return false
}
