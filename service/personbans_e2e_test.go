package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 21, item 3: a ban of a person's own account applies to the
// person. An IRC channel operator bans and kicks alice's own connection.
// What she then writes on Matrix reaches the MUC from her own occupant,
// and nothing of it reaches the channel, neither from her nick, nor from
// a puppet of hers, nor from the bot: it is on the failed list with the
// ban's reason and she is told once, on Matrix. After -b her next
// message reaches the channel from her nick.
func TestPersonBannedOnIRCStaysOutFromEveryAccount(t *testing.T) {
	var op *testenv.IRCClient
	w := newPWorldAfter(t, alicePeople, func(w *pworld, cfg *config.Config) {
		cfg.HTTP.APIToken = apiToken // for /api/failed
		op = w.human(t, "op")        // first in: the channel's operator
		if _, err := op.Wait(patience, func(l testenv.IRCLine) bool { return l.Command == "366" }); err != nil {
			t.Fatal(err)
		}
	})
	carol := w.person(t, "carol")
	if _, err := op.Wait(patience, func(l testenv.IRCLine) bool { return l.Command == "JOIN" && l.Nick() == "alice" }); err != nil {
		t.Fatalf("alice's own connection never joined: %v", err)
	}

	const mask = "alice!*@*"
	op.Send("MODE", room, "+b", mask)
	op.Send("KICK", room, "alice", "enough")
	if _, err := op.Wait(patience, func(l testenv.IRCLine) bool { return l.Command == "KICK" && l.Params[1] == "alice" }); err != nil {
		t.Fatal(err)
	}
	// The bot saw the +b match her connection: she is kept out as a
	// person, not as the account she will write from.
	person := bridge.SenderRef{Network: "mx", ID: "person/alice"}
	if b := waitBlocks(t, w.svc, 1)[0]; b.Sender != person || b.Source != bridge.BlockBan || b.By != "op" ||
		b.Room != (bridge.RoomAddr{Network: "libera", Room: room}) {
		t.Errorf("block %+v, want the person alice banned from libera:%s by op", b, room)
	}
	banned := op.Len()

	w.alice.Text(w.roomID, "while banned")
	st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && s.Body() == "while banned"
	})
	if j := occupantJID(carol, w.room.String(), st.Nick()); !strings.HasPrefix(j, "alice@localhost/") {
		t.Errorf("the MUC shows it from %q (%q), want her own occupant", st.Nick(), j)
	}
	w.alice.Text(w.roomID, "still banned")
	// carol's line comes after alice's in the channel's queue: once it is
	// there, hers had their turn.
	if _, err := carol.Say(w.room, "canary"); err != nil {
		t.Fatal(err)
	}
	op.WaitText(patience, room, "", "canary")
	for _, l := range op.Lines()[banned:] {
		if strings.Contains(l.Text(), "banned") {
			t.Errorf("a banned person's message reached the channel: %s", l.Raw)
		}
		if l.Command == "JOIN" && (strings.EqualFold(l.Nick(), "alice") || strings.HasPrefix(l.Nick(), "Alice")) {
			t.Errorf("alice came back despite the ban: %s", l.Raw)
		}
	}
	failed := waitFailed(t, w.svc, 2)
	for _, f := range failed {
		if f.Room != "libera:"+room || f.Sender != "mx:@alice:localhost" || !strings.Contains(f.Reason, "banned from #room on libera") {
			t.Errorf("failed delivery %+v: want hers, to libera:%s, banned", f, room)
		}
	}

	// She is told once, by the Matrix bot.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	dm, err := w.alice.WaitInvite(ctx, func(r id.RoomID) bool { return r != w.roomID })
	if err != nil {
		t.Fatal(err)
	}
	w.alice.Join(string(dm))
	bot := id.NewUserID(w.mx.Bot, w.mx.Domain)
	notice := func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == dm && ev.Sender == bot && strings.Contains(c.Body, "banned from #room on libera")
	}
	w.waitMatrix(t, "the notice of her ban", notice)
	time.Sleep(time.Second)
	n := 0
	for _, ev := range w.alice.Events() {
		if notice(ev) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d notices of the ban, want one", n)
	}

	// The ban is lifted: her next message reaches the channel from her.
	op.Send("MODE", room, "-b", mask)
	waitBlocks(t, w.svc, 0)
	w.alice.Text(w.roomID, "free again")
	op.WaitText(patience, room, "alice", "free again")
	if n := len(failedList(t, w.svc)); n != 2 {
		t.Errorf("%d failed deliveries after the ban was lifted, want 2", n)
	}
}
