package irc

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/fence"
)

// Shards (adapters.Sharded): a network with `shards: N` splits the
// connections that speak for senders (puppets, people's own connections)
// into N shards by a hash of whom they speak for, so that the instances
// of a cluster share them, each from its own source_address. Shard 0
// also has the bot, which alone reads the channels: an adapter without
// shard 0 connects no bot and reports nothing said in a channel, so each
// line is bridged once, by shard 0's holder.
//
// Which connection delivers an event is decided by ShardOf alone, the
// same on every instance, and the adapter never goes beyond it: a
// delivery whose shard is not held here fails with ErrNotConnected (the
// router retries it, or its holder delivers it), and where a puppet's
// shard would fall back to the bot (all puppets taken, puppets refused
// by the server, a channel the puppet cannot join) the bot is used only
// if shard 0 is held here too; else the delivery waits and is retried.

var _ adapters.Sharded = (*Adapter)(nil)

// shardState is the adapter's part of sharding; a.mu guards it, except
// may (read at every write, under connections' locks) and peopleMu.
type shardState struct {
	shards int
	// held says which shards run here, by shard: all of them until
	// HoldShards says otherwise (outside cluster mode).
	held []bool
	// heldChanged is closed and replaced whenever held changes: the bot
	// waits on it while shard 0 is not held.
	heldChanged chan struct{}
	may         atomic.Pointer[func(shard int) bool]
	// fences are each shard's write-time check (internal/fence), shared
	// by its connections: one warning when the shard is lost, not one a
	// puppet. nil when not sharded (UseFence then covers the adapter).
	fences []*fence.Fence
	// accts are every person's accounts as UsePeople gave them; only
	// those of held shards are connected.
	accts    []PersonalAccount
	peopleMu sync.Mutex // one usePeople at a time
	// peers are the folded nicks of other instances' connections seen
	// in the channels (puppets and people's connections of shards held
	// elsewhere), which the bot must no more bridge than our own.
	peers map[string]bool
	// fallbacks are the events the bot (shard 0) could not carry whose
	// fallback line comes next from the router (a topic it may not set):
	// the bot says it where the sender's shard is held elsewhere.
	fallbacks map[bridge.EventID]bool
	// peerTags is whether the server relays client tags, as a puppet or
	// person's connection found where there is no bot to ask.
	peerTags atomic.Bool
}

// init holds every one of shards, as outside cluster mode.
func (s *shardState) init(shards int) {
	s.shards, s.heldChanged, s.peers = max(shards, 1), make(chan struct{}), map[string]bool{}
	s.held = make([]bool, s.shards)
	for i := range s.held {
		s.held[i] = true
	}
}

// Shards implements adapters.Sharded.
func (a *Adapter) Shards() int { return a.shards }

// ShardOf implements adapters.Sharded: the shard of the connection that
// delivers ev. Those speaking for a sender (their own connection, else
// their puppet) are in the shard of the person, or of the sender's
// network and id; the bot, which relays (relay mode or a relayed room),
// says room notices and sets topics, is shard 0. Joins, leaves and
// renames are mirrored by the sender's puppet, so they go to its shard,
// in relayed rooms too.
func (a *Adapter) ShardOf(ev bridge.Event, relay bool) int {
	if a.shards <= 1 || ev == nil || bridge.IsRoomNotice(ev) {
		return 0
	}
	s := ev.Head().Sender
	if s.ID == "" && s.Network == "" && s.Person == "" {
		return 0
	}
	switch ev.(type) {
	case *bridge.Topic:
		return 0
	case *bridge.Join, *bridge.Leave, *bridge.Rename:
		if a.mode != "puppet" {
			return 0
		}
		return a.senderShard(s)
	}
	if relay || a.mode != "puppet" {
		return 0
	}
	return a.senderShard(s)
}

// senderShard is the shard of the connections that speak for s: its
// person's (their own connection and their one puppet, whichever
// account they wrote from), else its network's and id's.
func (a *Adapter) senderShard(s bridge.Sender) int {
	if s.Person != "" {
		return a.personShard(s.Person)
	}
	return shardFor(s.Network+"\x00"+s.ID, a.shards)
}

func (a *Adapter) personShard(person string) int {
	return shardFor(bridge.PersonPrefix+person, a.shards)
}

// shardFor is FNV-1a of key, mod n: stable across instances and
// releases, which must all agree.
func shardFor(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// HoldShards implements adapters.Sharded. Puppets and people's
// connections of shards no longer held quit; those of newly held ones
// connect (people at once, puppets when next needed). The bot connects
// once shard 0 is held and quits when it is not, without stopping the
// adapter.
func (a *Adapter) HoldShards(held []int, may func(shard int) bool) {
	if may == nil {
		a.may.Store(nil)
	} else {
		a.may.Store(&may)
	}
	set := make([]bool, a.shards)
	for _, k := range held {
		if k >= 0 && k < a.shards {
			set[k] = true
		}
	}
	a.mu.Lock()
	botWas := a.held[0]
	a.held = set
	close(a.heldChanged)
	a.heldChanged = make(chan struct{})
	running := a.started && !a.stopped
	var gone []*conn
	if running {
		for key, p := range a.puppets {
			if set[a.senderShard(p.sender)] {
				continue
			}
			delete(a.puppets, key)
			p.retired = true // one still connecting quits once up
			if p.k != nil {
				gone = append(gone, p.k)
			}
		}
	}
	bot, in := a.bot, a.in
	a.mu.Unlock()
	a.usePeople()
	for _, k := range gone {
		k.quit()
	}
	if running && botWas && !set[0] {
		a.ready.Store(false)
		a.log.Info("shard 0 no longer held here: the bot quits", "network", a.name)
		bot.leaveNetwork()
	}
	if running {
		in.Online(a.name) // deliveries of the shards now held may go
	}
	a.log.Info("holding shards", "network", a.name, "shards", held, "of", a.shards)
}

// holds reports whether shard k runs here.
func (a *Adapter) holds(k int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.heldLocked(k)
}

func (a *Adapter) heldLocked(k int) bool { return k >= 0 && k < len(a.held) && a.held[k] }

// mayShard is the connections' check before each dial and write: the
// cluster's word on shard k (always yes outside cluster mode).
func (a *Adapter) mayShard(k int) bool {
	f := a.may.Load()
	return f == nil || (*f)(k)
}

// botGate holds the bot's (re)connection while shard 0 is not held here.
func (a *Adapter) botGate(ctx context.Context) error {
	for {
		a.mu.Lock()
		held, changed := a.heldLocked(0), a.heldChanged
		a.mu.Unlock()
		if held {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// learnServer takes what the server says of itself from a puppet or a
// person's connection k, where no bot is here to tell it (nick length,
// casemapping, message-tags).
func (a *Adapter) learnServer(k *conn) {
	tags, is := k.tagsOK(), k.irc.ISupport() // k's locks are not taken under a.mu
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.heldLocked(0) {
		return // the bot's word
	}
	a.peerTags.Store(tags)
	if !a.info.known {
		a.learnServerLocked(is)
	}
}

// notePeerLocked records nick, whose ident is user, as a connection of
// another instance's shard when it is one, and says whether it is: a
// puppet has the bot's ident (username), a person's connection their
// account's nick (their shard held elsewhere). a.mu must be held. Only
// with shards > 1: a user who takes the bot's ident there is taken for
// one of its puppets and not bridged.
func (a *Adapter) notePeerLocked(nick, user string) bool {
	if a.shards <= 1 || nick == "" {
		return false
	}
	peer := false
	u, want := strings.TrimPrefix(user, "~"), a.cfg.Username
	// The server may cut the ident to its USERLEN.
	if u != "" && (u == want || len(u) >= 4 && strings.HasPrefix(want, u)) {
		peer = true
	}
	for _, acct := range a.accts {
		if !a.heldLocked(a.personShard(acct.Person)) && a.info.cm.equal(acct.ID, nick) {
			peer = true
		}
	}
	if peer {
		a.peers[a.info.cm.fold(nick)] = true
	}
	return peer
}

// peerGoneLocked forgets a peer that is in no bridged channel anymore
// (folded nick f); a.mu must be held.
func (a *Adapter) peerGoneLocked(f string) {
	if !a.peers[f] {
		return
	}
	for _, r := range a.rooms {
		if r.members[f] != nil {
			return
		}
	}
	delete(a.peers, f)
}

// botFallback has the bot say id's fallback line where the sender's
// shard is another instance's: ShardOf gave the event to shard 0.
func (a *Adapter) botFallback(id bridge.EventID) {
	if a.shards <= 1 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fallbacks == nil || len(a.fallbacks) > 1000 {
		a.fallbacks = map[bridge.EventID]bool{} // the router sends it at once: old ones are stale
	}
	a.fallbacks[id] = true
}

// takeBotFallbackLocked reports whether id is a fallback line botFallback
// gave to the bot, and forgets it; a.mu must be held.
func (a *Adapter) takeBotFallbackLocked(id bridge.EventID) bool {
	ok := a.fallbacks[id]
	delete(a.fallbacks, id)
	return ok
}

// notHeld is the error of a delivery for shard k handed to an adapter
// that does not hold it: retried, never sent through another
// connection.
func (a *Adapter) notHeld(k int) error {
	return fmt.Errorf("irc: shard %d of %s is not held by this instance: %w", k, a.name, bridge.ErrNotConnected)
}

// parseSourceAddr is source_address as the dialer's local IP; New has
// checked it.
func parseSourceAddr(s string) net.IP {
	if s == "" {
		return nil
	}
	return net.ParseIP(s)
}

// leaveNetwork sends QUIT without ending the connection's reconnect loop,
// whose next dial waits at its gate (the bot: until shard 0 is held
// again).
func (k *conn) leaveNetwork() {
	if k.isUp() {
		if err := k.irc.Send("QUIT", "Switchboard"); err != nil {
			k.closeSocket()
		}
		return
	}
	k.closeSocket()
}
