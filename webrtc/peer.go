package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/wire"
)

const (
	channelLabel = "chat"
	maxNameBytes = 64
	maxIDBytes   = 64
	maxKeyBytes  = 64
	acceptWait   = 30 * time.Second
)

// peer is one session: a peer connection, its chat channel and, after
// hello, an identity in a room.
type peer struct {
	a       *Adapter
	room    *room
	session string
	pc      *webrtc.PeerConnection
	bucket  *rate.Limiter // the frames the peer may send
	// person is the account whose personal token the offer presented:
	// the peer is them, whatever name and id its hello claims.
	person *adapters.PersonalAccount

	mu     sync.Mutex
	dc     *webrtc.DataChannel
	sender bridge.Sender // set by hello
	hello  bool
	closed bool
	// holding: from hello until the welcome and the history have gone
	// out, what the room says waits in held (heldBytes in all), so that
	// it comes after them (see sayHello).
	holding   bool
	held      [][]byte
	heldBytes int
	// shown are the ids of the history's messages, whose live copies may
	// still come after the holding ended (a message still queued for the
	// room when the history was read is delivered once its commit is on
	// disk): they are left out until shownUntil.
	shown      map[string]bool
	shownUntil time.Time

	closeOnce sync.Once
	done      chan struct{}
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// watch wires the connection's callbacks.
func (p *peer) watch() {
	p.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			go p.close("connection failed")
		case webrtc.PeerConnectionStateClosed:
			go p.close("connection closed")
		}
	})
	p.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != channelLabel {
			dc.Close()
			return
		}
		p.mu.Lock()
		if p.dc != nil || p.closed {
			p.mu.Unlock()
			dc.Close()
			return
		}
		p.dc = dc
		p.mu.Unlock()
		// Messages of one channel are handed over one at a time, in order:
		// each is accepted before the next is read.
		dc.OnMessage(func(m webrtc.DataChannelMessage) { p.handle(m) })
		dc.OnClose(func() { go p.close("channel closed") })
	})
	timer := time.AfterFunc(p.a.Timeouts.Hello, func() {
		p.mu.Lock()
		hello := p.hello
		p.mu.Unlock()
		if !hello {
			p.close("no hello in time")
		}
	})
	go func() { <-p.done; timer.Stop() }()
}

// close ends the session once: one leave if the peer had said hello.
func (p *peer) close(reason string) {
	p.closeOnce.Do(func() {
		a := p.a
		a.mu.Lock()
		p.mu.Lock()
		p.closed = true
		hello := p.hello
		p.mu.Unlock()
		delete(a.sessions, p.session)
		var others []*peer
		if hello {
			delete(p.room.peers, p.session)
			others = p.room.list()
		} else {
			p.room.pending--
		}
		ctx, left := a.ctx, p.room.left
		a.mu.Unlock()
		close(p.done)
		defer a.wg.Done()
		p.pc.Close()
		if hello {
			a.publishPeer(p, false)
		}
		if !hello || left {
			return // a closed room's peers leave with it, unreported
		}
		a.log.Info("peer left", "room", p.room.name, "id", p.sender.ID, "reason", reason)
		ev := &bridge.Leave{Header: p.header(), Reason: reason}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), acceptWait)
		defer cancel()
		if err := a.in.Accept(actx, ev); err != nil {
			a.log.Warn("leave not accepted", "room", p.room.name, "id", p.sender.ID, "err", err)
		}
		if frame, err := wire.Encode(ev); err == nil {
			for _, o := range others {
				o.sendRaw(frame)
			}
			a.relayRoomFrame(p.room.name, frame, nil)
		}
	})
}

func (p *peer) roomLeft() bool {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	return p.room.left
}

func (p *peer) header() bridge.Header {
	id := bridge.NewEventID()
	return bridge.Header{
		ID:     id,
		Origin: bridge.Origin{Network: p.a.name, Room: p.room.name, RemoteID: string(id)},
		Sender: p.sender,
		Time:   time.Now().UTC(),
	}
}

// sendRaw queues a frame to the peer, after its welcome and history; a
// peer that does not keep up is dropped.
func (p *peer) sendRaw(frame []byte) {
	p.mu.Lock()
	if p.shown != nil && !p.holding {
		if time.Now().After(p.shownUntil) {
			p.shown = nil
		} else if id := messageID(frame); id != "" && p.shown[id] {
			delete(p.shown, id)
			p.mu.Unlock()
			return
		}
	}
	if p.holding {
		if p.heldBytes+len(frame) > maxBuffered {
			p.mu.Unlock()
			go p.close("too slow")
			return
		}
		p.held = append(p.held, frame)
		p.heldBytes += len(frame)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.transmit(frame)
}

// transmit sends a frame to the peer now; a peer that does not keep up
// is dropped.
func (p *peer) transmit(frame []byte) {
	p.mu.Lock()
	dc := p.dc
	closed := p.closed
	p.mu.Unlock()
	if dc == nil || closed || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	if dc.BufferedAmount()+uint64(len(frame)) > maxBuffered {
		go p.close("too slow")
		return
	}
	if err := dc.SendText(string(frame)); err != nil {
		p.a.log.Debug("send to peer", "session", p.session, "err", err)
	}
}

func (p *peer) sendError(code, format string, args ...any) {
	p.sendRaw(encodeFrame(errorFrame{Type: "error", Code: code, Message: fmt.Sprintf(format, args...)}))
}

// handle processes one frame from the peer.
func (p *peer) handle(m webrtc.DataChannelMessage) {
	a := p.a
	if !p.bucket.Allow() {
		a.drop(DropRateLimited)
		p.sendError(codeRateLimited, "more than %d frames a second (burst %d); frame dropped", a.cfg.Rate.PerSecond, a.cfg.Rate.Burst)
		return
	}
	if len(m.Data) > a.cfg.MaxMessage {
		a.drop(DropOversize)
		p.sendError(codeTooLarge, "frame of %d bytes exceeds the limit of %d", len(m.Data), a.cfg.MaxMessage)
		return
	}
	if !m.IsString || !utf8.Valid(m.Data) {
		a.drop(DropMalformed)
		p.sendError(codeInvalidJSON, "frames are JSON text")
		return
	}
	var f inFrame
	if err := json.Unmarshal(m.Data, &f); err != nil {
		a.drop(DropMalformed)
		p.sendError(codeInvalidJSON, "not a JSON object: %v", err)
		return
	}
	p.mu.Lock()
	hello := p.hello
	p.mu.Unlock()
	if f.Type == "hello" {
		if hello {
			p.sendError(codeAlreadyHello, "hello was already said")
			return
		}
		p.sayHello(f)
		return
	}
	if !hello {
		p.sendError(codeNotHello, "say hello first: {\"type\":\"hello\",\"name\":\"...\"}")
		return
	}
	if p.roomLeft() {
		p.sendError(codeRoomClosed, "room %s is no longer bridged", p.room.name)
		return
	}
	if f.Type == "direct" {
		p.sendDirect(f)
		return
	}
	var ev bridge.Event
	h := p.header()
	switch f.Type {
	case "message":
		if strings.TrimSpace(f.Text) == "" {
			p.sendError(codeInvalid, "a message needs text")
			return
		}
		msg := &bridge.Message{Header: h, Text: f.Text}
		if f.ReplyTo != "" {
			msg.ReplyTo = bridge.Ref{Remote: f.ReplyTo}
		}
		ev = msg
	case "edit", "delete":
		if f.Target == "" || (f.Type == "edit" && strings.TrimSpace(f.Text) == "") {
			p.sendError(codeInvalid, "%s needs target%s", f.Type, map[bool]string{true: " and text"}[f.Type == "edit"])
			return
		}
		a.mu.Lock()
		author, known := p.room.authors.get(f.Target)
		a.mu.Unlock()
		if known && !p.wrote(author) {
			p.sendError(codeNotAllowed, "only your own messages can be changed")
			return
		}
		if f.Type == "edit" {
			ev = &bridge.Edit{Header: h, Target: bridge.Ref{Remote: f.Target}, Text: f.Text}
		} else {
			ev = &bridge.Delete{Header: h, Target: bridge.Ref{Remote: f.Target}}
		}
	case "reaction":
		if f.Target == "" || f.Key == "" || len(f.Key) > maxKeyBytes {
			p.sendError(codeInvalid, "reaction needs target and a key of at most %d bytes", maxKeyBytes)
			return
		}
		ev = &bridge.Reaction{Header: h, Target: bridge.Ref{Remote: f.Target}, Key: f.Key, Remove: f.Remove}
	case "typing":
		ev = &bridge.Typing{Header: h, Active: f.Active}
	default:
		p.sendError(codeUnknownType, "unknown frame type %q", f.Type)
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, acceptWait)
	defer cancel()
	if err := a.in.Accept(ctx, ev); err != nil {
		a.log.Warn("event not accepted", "room", p.room.name, "err", err)
		p.sendError(codeUnavailable, "not accepted, try again")
		return
	}
	p.shareLocally(ev)
}

// shareLocally shows an accepted event to the room's peers, the sender
// included: the router sends an event to the other rooms of its link, not
// back to its own, and the echo tells the sender the event's id.
func (p *peer) shareLocally(ev bridge.Event) {
	a := p.a
	// After Accept the router has resolved the refs to event ids.
	frame, err := wire.Encode(ev)
	if err != nil {
		return
	}
	var author *bridge.Sender
	a.mu.Lock()
	switch e := ev.(type) {
	case *bridge.Message:
		p.room.authors.add(string(e.ID), e.Sender)
		author = &e.Sender
	case *bridge.Edit, *bridge.Delete:
		// Shown only when the room knows the author (and it is the peer):
		// otherwise the router decided, and this side cannot tell.
		t, _ := bridge.Target(ev)
		author, ok := p.room.authors.get(string(t.Event))
		if t.Event == "" || !ok || !p.wrote(author) {
			a.mu.Unlock()
			return
		}
	case *bridge.Reaction:
		if e.Target.Event == "" {
			a.mu.Unlock()
			return
		}
	}
	peers := p.room.list()
	a.mu.Unlock()
	for _, o := range peers {
		if ev.Kind() == bridge.KindTyping && o == p {
			continue
		}
		o.sendRaw(frame)
	}
	a.relayRoomFrame(p.room.name, frame, author)
}

func (p *peer) sayHello(f inFrame) {
	a := p.a
	name, id, verified := strings.TrimSpace(f.Name), f.ID, p.person != nil
	switch {
	case verified:
		// The configured name, and the account the token vouches for.
		name, id = p.person.Name, p.person.ID
		if name == "" {
			name = p.person.Person
		}
	case checkName(name) != nil:
		p.sendError(codeInvalid, "name: %v", checkName(name))
		return
	case id == "":
		id = "web-" + newSessionID()[:16]
	case checkID(id) != nil:
		p.sendError(codeInvalid, "id: %v", checkID(id))
		return
	case a.personalID(id):
		// Someone else's id would let a peer change their messages here.
		p.sendError(codeNotAllowed, "id %s is a person's: join with their personal token (%s)", id, PersonHeader)
		return
	}
	a.mu.Lock()
	if p.closed {
		a.mu.Unlock()
		return
	}
	if p.room.left {
		a.mu.Unlock()
		p.sendError(codeRoomClosed, "room %s is no longer bridged", p.room.name)
		return
	}
	if len(p.room.peers) >= a.cfg.MaxPeers {
		a.mu.Unlock()
		p.sendError(codeRoomFull, "room %s has its %d peers", p.room.name, a.cfg.MaxPeers)
		time.AfterFunc(time.Second, func() { p.close("room full") })
		return
	}
	var present []peerInfo
	for _, o := range p.room.peers {
		present = append(present, peerInfo{ID: o.sender.ID, Name: o.sender.Name, Person: o.personID()})
	}
	for _, e := range a.remotePeers(p.room.name) {
		present = append(present, peerInfo{ID: e.ID, Name: e.Name, Person: e.Person})
	}
	p.mu.Lock()
	p.sender = bridge.Sender{Network: a.name, ID: id, Name: name, Authenticated: verified}
	p.hello = true
	// The room's traffic from now on waits for the welcome and the
	// history: read after this, the history may hold some of it too,
	// which the page shows once (by id).
	p.holding = true
	p.mu.Unlock()
	p.room.pending--
	p.room.peers[p.session] = p
	others := p.room.list()
	a.mu.Unlock()
	a.publishPeer(p, true)

	p.transmit(encodeFrame(welcomeFrame{
		Type: "welcome", ID: id, Name: name, Person: p.personID(), Network: a.name, Room: p.room.name, Session: p.session,
		Peers:  present,
		Limits: limitsInfo{MaxMessage: a.cfg.MaxMessage, PerSecond: a.cfg.Rate.PerSecond, Burst: a.cfg.Rate.Burst, MaxFile: a.maxFile()},
	}))
	p.release(p.sendHistory())
	a.log.Info("peer joined", "room", p.room.name, "id", id, "name", name, "verified", verified)
	ev := &bridge.Join{Header: p.header()}
	ctx, cancel := context.WithTimeout(a.ctx, acceptWait)
	defer cancel()
	if err := a.in.Accept(ctx, ev); err != nil {
		a.log.Warn("join not accepted", "room", p.room.name, "err", err)
	}
	if verified {
		// The direct messages that waited for a page of theirs come now.
		a.in.Online(a.name)
	}
	if frame, err := wire.Encode(ev); err == nil {
		for _, o := range others {
			if o != p {
				o.sendRaw(frame)
			}
		}
		a.relayRoomFrame(p.room.name, frame, nil)
	}
}

// wrote reports whether author is the peer: its own page id, or for a
// verified person any account of theirs (the router marked the author's
// messages with Person), as their edits count from any of them.
func (p *peer) wrote(author bridge.Sender) bool {
	if author.Network == p.sender.Network && author.ID == p.sender.ID {
		return true
	}
	return p.person != nil && author.Person != "" && author.Person == p.person.Person
}

// personID is the id of the person the peer is, verified by their
// token, or "".
func (p *peer) personID() string {
	if p.person == nil {
		return ""
	}
	return p.person.Person
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("required")
	case len(name) > maxNameBytes:
		return fmt.Errorf("at most %d bytes", maxNameBytes)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("contains a control character")
	}
	return nil
}

func checkID(id string) error {
	if len(id) > maxIDBytes {
		return fmt.Errorf("at most %d bytes", maxIDBytes)
	}
	for _, r := range id {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("letters, digits, . _ and - only")
		}
	}
	return nil
}

// Drop reasons counted by Dropped: frames refused before they became
// events (the peer is told with an error frame).
const (
	DropRateLimited = "rate_limited"
	DropOversize    = "oversize"
	DropMalformed   = "malformed"
)

func (a *Adapter) drop(reason string) {
	a.dropMu.Lock()
	a.dropped[reason]++
	a.dropMu.Unlock()
}

// Dropped counts the frames refused, by reason (the Drop constants).
func (a *Adapter) Dropped() map[string]uint64 {
	a.dropMu.Lock()
	defer a.dropMu.Unlock()
	return maps.Clone(a.dropped)
}
