package chatcmd

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

// cmdFakeKeeper is the router with its blocks.
type cmdFakeKeeper struct {
	cmdFakeNext
	blocks []bridge.Block
}

func (k *cmdFakeKeeper) Block(_ context.Context, b bridge.Block) error {
	for i, old := range k.blocks {
		if old.Key() == b.Key() {
			k.blocks[i] = b
			return nil
		}
	}
	k.blocks = append(k.blocks, b)
	return nil
}

func (k *cmdFakeKeeper) Unblock(_ context.Context, key bridge.BlockKey) (bool, error) {
	for i, b := range k.blocks {
		if b.Key() == key {
			k.blocks = append(k.blocks[:i], k.blocks[i+1:]...)
			return true, nil
		}
	}
	return false, nil
}

func (k *cmdFakeKeeper) Blocks(room bridge.RoomAddr) []bridge.Block {
	var out []bridge.Block
	for _, b := range k.blocks {
		if b.Room == room {
			out = append(out, b)
		}
	}
	return out
}

// cmdFakePuppets is an adapter with a bot and puppets, by room and name.
type cmdFakePuppets struct {
	*cmdFakeBot
	names map[string]bridge.SenderRef // "room|name"
}

func (p cmdFakePuppets) PuppetSender(_ context.Context, room, name string) (bridge.SenderRef, bool) {
	s, ok := p.names[room+"|"+name]
	return s, ok
}

// newBlockWorld is newCmdWorld with a router that keeps blocks, and IRC
// puppets in #a.
func newBlockWorld(t *testing.T) (*cmdWorld, *cmdFakeKeeper) {
	w := newCmdWorld(t)
	k := &cmdFakeKeeper{}
	w.c.next = k
	w.c.AddNetwork("libera", "irc", cmdFakePuppets{cmdFakeBot: w.bots["libera"], names: map[string]bridge.SenderRef{
		"#a|sensor-1[devices]": {Network: "devices", ID: "sensor-1"},
	}})
	return w, k
}

// ircOp operates #a; ircPlain does not.
var (
	ircOp    = bridge.Sender{Network: "libera", ID: "carol", Name: "carol", Mask: "carol!~c@home.example"}
	ircPlain = bridge.Sender{Network: "libera", ID: "dave", Name: "dave", Mask: "dave!~d@home.example"}
)

func opMsg(room bridge.RoomAddr, from bridge.Sender, text string) *bridge.Message {
	m := roomMsg(room, from, text)
	m.Operator = true
	return m
}

func TestOperatorBlocksInTheirRoom(t *testing.T) {
	w, k := newBlockWorld(t)
	w.say(t, opMsg(roomA, ircOp, "!sb block devices:sensor-1"))
	wantReply(t, w.replies("libera"), "Blocked devices:sensor-1 from libera:#a")
	if len(k.blocks) != 1 {
		t.Fatalf("blocks %+v", k.blocks)
	}
	b := k.blocks[0]
	want := bridge.Block{Room: roomA, Sender: bridge.SenderRef{Network: "devices", ID: "sensor-1"}, Source: bridge.BlockOperator,
		Reason: "blocked from #a on libera by carol", By: "libera:carol"}
	if b != want {
		t.Errorf("block %+v, want %+v", b, want)
	}
	w.say(t, opMsg(roomA, ircOp, "!sb block sensor-1[devices]"))
	wantReply(t, w.replies("libera"), "devices:sensor-1 is already blocked from libera:#a (blocked from #a on libera by carol")
	w.say(t, opMsg(roomA, ircOp, "!sb blocks"))
	wantReply(t, w.replies("libera"), "1 blocked from libera:#a:", "devices:sensor-1: blocked from #a on libera by carol (operator, by libera:carol, since 0001-01-01 00:00 UTC)")
	w.say(t, opMsg(roomA, ircOp, "!sb unblock sensor-1[devices]"))
	wantReply(t, w.replies("libera"), "Unblocked devices:sensor-1 in libera:#a")
	w.say(t, opMsg(roomA, ircOp, "!sb unblock devices:sensor-1"))
	wantReply(t, w.replies("libera"), "devices:sensor-1 is not blocked from libera:#a.")
	w.say(t, opMsg(roomA, ircOp, "!sb blocks"))
	wantReply(t, w.replies("libera"), "No one is blocked from libera:#a.")
	// Relay mode is the operators' too.
	w.say(t, opMsg(roomA, ircOp, "!sb relay on"))
	wantReply(t, w.replies("libera"), "Relay mode on for libera:#a")
	if !w.links.Relayed(roomA) {
		t.Error("relay mode not turned on")
	}
	if len(k.accepted) != 0 {
		t.Errorf("commands reached the router: %v", k.accepted)
	}
}

func TestOperatorCommandsRefused(t *testing.T) {
	w, k := newBlockWorld(t)
	for _, c := range []struct {
		ev   *bridge.Message
		want string
	}{
		// Not an operator (nor an admin).
		{roomMsg(roomA, ircPlain, "!sb block devices:sensor-1"), "only Switchboard admins and this room's operators"},
		// An operator flag on a sender of another network: one of our own
		// puppets, never an operator of the room.
		{opMsg(roomA, bridge.Sender{Network: "matrix", ID: "@x:hs"}, "!sb block devices:sensor-1"), "only Switchboard admins and this room's operators"},
		// Operators act in their room only, never by direct message.
		{func() *bridge.Message {
			m := directMsg(ircOp, "!sb block libera:#a devices:sensor-1")
			m.Operator = true
			return m
		}(), "only Switchboard admins may use !sb commands by direct message"},
		// The admins' own commands.
		{opMsg(roomA, ircOp, "!sb link libera:#b"), "the rest is for Switchboard admins"},
		{opMsg(roomA, ircOp, "!sb status"), "the rest is for Switchboard admins"},
	} {
		w.say(t, c.ev)
		wantReply(t, w.replies(c.ev.Origin.Network), c.want)
	}
	if len(k.blocks) != 0 || len(w.links.calls) != 0 || len(k.accepted) != 0 {
		t.Errorf("refused commands changed something: blocks %+v, calls %q, passed on %d", k.blocks, w.links.calls, len(k.accepted))
	}
	// An operator's help names only what they may do.
	w.say(t, opMsg(roomA, ircOp, "!sb help"))
	got := strings.Join(w.replies("libera"), "\n")
	if !strings.Contains(got, `"!sb block <sender>"`) || strings.Contains(got, "!sb link") {
		t.Errorf("operator's help: %s", got)
	}
}

func TestBlockSenderNames(t *testing.T) {
	w, k := newBlockWorld(t)
	for _, c := range []struct{ text, want string }{
		{"!sb block", `Usage: "!sb block <sender>"`},
		{"!sb block a  b", `No one bridged into libera:#a is named "a b"`},
		{"!sb block somebody", `No one bridged into libera:#a is named "somebody"`},
		// A name of another room's puppet is not one here.
		{"!sb block nowhere:x", `No one bridged into libera:#a is named "nowhere:x"`},
		{"!sb block libera:dave", "libera:dave is of libera:#a's own network"},
		{"!sb block devices:", `No one bridged into libera:#a is named "devices:"`},
		{"!sb blocks now", `Usage: "!sb blocks"`},
	} {
		w.say(t, opMsg(roomA, ircOp, c.text))
		wantReply(t, w.replies("libera"), c.want)
	}
	w.say(t, opMsg(roomB, ircOp, "!sb block sensor-1[devices]"))
	wantReply(t, w.replies("libera"), `No one bridged into libera:#b is named "sensor-1[devices]"`)
	// A Matrix sender by MXID: the id keeps its colons.
	w.say(t, opMsg(roomA, ircOp, "!sb block matrix:@x:localhost"))
	wantReply(t, w.replies("libera"), "Blocked matrix:@x:localhost from libera:#a")
	if len(k.blocks) != 1 || k.blocks[0].Sender != (bridge.SenderRef{Network: "matrix", ID: "@x:localhost"}) {
		t.Errorf("blocks %+v", k.blocks)
	}
}

func TestAdminBlocksAnywhereAndByDirectMessage(t *testing.T) {
	w, k := newBlockWorld(t)
	w.say(t, directMsg(ircAdmin, "!sb block devices:chat/a matrix:@x:localhost"))
	wantReply(t, w.replies("libera"), "Blocked matrix:@x:localhost from devices:chat/a")
	w.say(t, directMsg(ircAdmin, "!sb blocks devices:chat/a"))
	wantReply(t, w.replies("libera"), "matrix:@x:localhost: blocked from chat/a on devices by op")
	// A ban is lifted where it was set, not by "!sb unblock".
	ban := bridge.Block{Room: roomA, Sender: bridge.SenderRef{Network: "devices", ID: "spammer"}, Source: bridge.BlockBan, Reason: "banned from #a on libera"}
	k.blocks = append(k.blocks, ban)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb unblock devices:spammer"))
	wantReply(t, w.replies("libera"), "devices:spammer is still kept out of libera:#a: banned from #a on libera. Lift the ban in the room")
	if len(k.blocks) != 2 {
		t.Errorf("blocks %+v", k.blocks)
	}
}
