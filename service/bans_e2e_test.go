package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// failedList is GET /api/failed.
func failedList(t *testing.T, svc *Service) []httpapi.Failed {
	t.Helper()
	var list struct {
		Failed []httpapi.Failed `json:"failed"`
	}
	code, body := apiCall(t, "GET", "http://"+svc.HTTPAddr+"/api/failed", apiToken, nil)
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/failed: %d %s %v", code, body, err)
	}
	return list.Failed
}

// waitFailed waits until the failed list holds n deliveries.
func waitFailed(t *testing.T, svc *Service, n int) []httpapi.Failed {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		list := failedList(t, svc)
		if len(list) >= n || time.Now().After(deadline) {
			if len(list) != n {
				t.Fatalf("failed list has %d deliveries, want %d: %+v", len(list), n, list)
			}
			return list
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitBlocks waits until the router keeps n blocks: what the adapters
// reported has been taken in.
func waitBlocks(t *testing.T, svc *Service, n int) []bridge.Block {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		b := svc.router.Blocks(bridge.RoomAddr{})
		if len(b) == n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d blocks, want %d: %+v", len(b), n, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Test 1 of issue 17: a channel operator bans and kicks the puppet of
// the MQTT device spammer. Nothing of spammer's reaches the channel
// while the ban stands, neither from the puppet nor from the bot: their
// messages are on the failed list with the reason, and spammer is told
// once, on MQTT. After -b its next message arrives from its puppet.
func TestIRCBanKeepsSenderOut(t *testing.T) {
	w := newWorld(t)
	// The first in a fresh channel is its operator.
	op := w.human(t, "op")
	if _, err := op.Wait(patience, func(l testenv.IRCLine) bool { return l.Command == "366" }); err != nil {
		t.Fatal(err)
	}
	svc, _ := runService(t, w.config(t, "puppet"))
	notices := w.mqtt.Subscribe(t, root+"/out/switchboard/#", 1)
	const puppet = "spammer[devices]"

	w.publish(t, "spammer", "hello")
	op.WaitText(patience, room, puppet, "hello")
	const mask = "spammer[devices]!*@*"
	op.Send("MODE", room, "+b", mask)
	op.Send("KICK", room, puppet, "enough")
	if _, err := op.Wait(patience, func(l testenv.IRCLine) bool {
		return l.Command == "KICK" && strings.EqualFold(l.Params[1], puppet)
	}); err != nil {
		t.Fatal(err)
	}
	banned := len(op.Lines())

	w.publish(t, "spammer", "buy now")
	w.publish(t, "spammer", "buy now!!")
	// Another device's line, after spammer's in the room's queue: once it
	// is there, spammer's had their turn.
	w.publish(t, "sensor", "canary")
	op.WaitText(patience, room, "sensor[devices]", "canary")

	for _, l := range op.Lines()[banned:] {
		if strings.Contains(l.Text(), "buy now") {
			t.Errorf("a banned sender's message reached the channel: %s", l.Raw)
		}
		if l.Command == "JOIN" && strings.EqualFold(l.Nick(), puppet) {
			t.Errorf("the banned puppet tried to come back: %s", l.Raw)
		}
	}
	failed := waitFailed(t, svc, 2)
	for _, f := range failed {
		if f.Room != "libera:"+room || f.Sender != "devices:spammer" || !strings.Contains(f.Reason, "banned from #room on libera") {
			t.Errorf("failed delivery %+v: want spammer's, to libera:%s, banned", f, room)
		}
	}
	if texts := []string{failed[0].Text, failed[1].Text}; !slices.Contains(texts, "buy now") || !slices.Contains(texts, "buy now!!") {
		t.Errorf("failed texts %q, %q", failed[0].Text, failed[1].Text)
	}
	// spammer is told once.
	m := notices.Next(t, patience)
	var ev mqtt.OutEvent
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if m.Topic != root+"/out/switchboard/switchboard" || ev.Type != "notice" ||
		!strings.Contains(ev.Text, "spammer") || !strings.Contains(ev.Text, "banned from #room on libera") {
		t.Errorf("notice on %s: %s", m.Topic, m.Payload)
	}
	notices.Quiet(t, time.Second)
	blocks := waitBlocks(t, svc, 1)
	if b := blocks[0]; b.Source != bridge.BlockBan || b.By != "op" || b.Sender != (bridge.SenderRef{Network: "devices", ID: "spammer"}) {
		t.Errorf("block %+v", b)
	}

	// The ban is lifted: spammer's puppet comes back with the next message.
	op.Send("MODE", room, "-b", mask)
	waitBlocks(t, svc, 0)
	w.publish(t, "spammer", "sorry")
	op.WaitText(patience, room, puppet, "sorry")
	if n := len(failedList(t, svc)); n != 2 {
		t.Errorf("%d failed deliveries after the ban was lifted, want 2", n)
	}
}

// setAffiliation has a MUC owner set the affiliation of j in the room.
func setAffiliation(t *testing.T, owner *testenv.XMPPClient, room, j jid.JID, affiliation string) {
	t.Helper()
	res, err := owner.IQ(room, "set", fmt.Sprintf(`<query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation=%q jid=%q/></query>`,
		affiliation, j.Bare().String()))
	if err != nil || res.Type() != "result" {
		t.Fatalf("set affiliation %s of %s: %v %s", affiliation, j, err, res.Raw)
	}
}

// Test 2 of issue 17: a MUC owner makes the puppet of the IRC user troll
// an outcast. Nothing of troll's reaches the MUC, not through the bot
// either; troll is told once, on IRC. Setting the affiliation back to
// none lets troll's next message in, from the puppet.
func TestXMPPOutcastKeepsSenderOut(t *testing.T) {
	w := newXWorld(t)
	// The first in a room is its owner.
	alice := w.person(t, "alice")
	cfg := w.config(t, "puppet")
	cfg.HTTP.APIToken = apiToken
	svc, _ := runService(t, cfg)
	troll := w.human(t, "troll")
	bob := w.human(t, "bob")
	trollJID := w.puppetJID(t, alice, troll, "troll")
	alice.WaitMessage(patience, groupchatFrom(w.room, "troll (libera)", "I'm here"))

	setAffiliation(t, alice, w.room, trollJID, "outcast")
	blocks := waitBlocks(t, svc, 1)
	if b := blocks[0]; b.Source != bridge.BlockBan || b.Sender != (bridge.SenderRef{Network: "libera", ID: "troll"}) ||
		b.Room != (bridge.RoomAddr{Network: "jabber", Room: w.room.String()}) {
		t.Errorf("block %+v", b)
	}
	banned := alice.Len()
	troll.Say(room, "you all stink")
	troll.Say(room, "really")
	bob.Say(room, "canary")
	alice.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "canary"))
	for _, s := range alice.Stanzas()[banned:] {
		if strings.Contains(s.Body(), "stink") || strings.Contains(s.Body(), "really") {
			t.Errorf("a banned sender's message reached the MUC: %s", s.Raw)
		}
	}
	reason := "banned from " + w.room.String() + " on jabber"
	failed := waitFailed(t, svc, 2)
	for _, f := range failed {
		if f.Sender != "libera:troll" || f.Room != "jabber:"+w.room.String() || !strings.Contains(f.Reason, reason) {
			t.Errorf("failed delivery %+v", f)
		}
	}
	told := troll.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return l.Command == "NOTICE" && strings.Contains(l.Text(), reason)
	})
	if !strings.EqualFold(told.Nick(), "switchboard") {
		t.Errorf("told by %s", told.Raw)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(troll.Messages(func(l testenv.IRCLine) bool { return strings.Contains(l.Text(), reason) })); n != 1 {
		t.Errorf("troll was told %d times, want once", n)
	}

	setAffiliation(t, alice, w.room, trollJID, "none")
	waitBlocks(t, svc, 0)
	troll.Say(room, "sorry")
	alice.WaitMessage(patience, groupchatFrom(w.room, "troll (libera)", "sorry"))
}

// Test 3 of issue 17: a Matrix room admin bans the ghost of the IRC user
// troll. Nothing of troll's reaches the Matrix room while the ban
// stands, and the failed list says why; the unban lets troll's next
// message in, from the ghost.
func TestMatrixBanKeepsSenderOut(t *testing.T) {
	w := newMWorld(t)
	cfg := w.config(t, "")
	cfg.HTTP.APIToken = apiToken
	svc, _ := runService(t, cfg)
	troll := w.human(t, "troll")
	bob := w.human(t, "bob")
	troll.Say(room, "I'm here")
	first := w.waitMatrix(t, "troll's message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "I'm here"
	})
	ghost := first.Sender

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := w.alice.BanUser(ctx, w.roomID, &mautrix.ReqBanUser{UserID: ghost, Reason: "trolling"}); err != nil {
		t.Fatal(err)
	}
	blocks := waitBlocks(t, svc, 1)
	if b := blocks[0]; b.Source != bridge.BlockBan || b.Sender != (bridge.SenderRef{Network: "libera", ID: "troll"}) ||
		b.Room != (bridge.RoomAddr{Network: "mx", Room: string(w.roomID)}) || b.By != string(w.alice.UserID) {
		t.Errorf("block %+v", b)
	}
	banned := len(w.alice.Events())
	troll.Say(room, "you all stink")
	bob.Say(room, "canary")
	w.waitMatrix(t, "bob's canary", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "canary"
	})
	for _, ev := range w.alice.Events()[banned:] {
		if c, ok := messageText(ev); ok && strings.Contains(c.Body, "stink") {
			t.Errorf("a banned sender's message reached the Matrix room from %s: %q", ev.Sender, c.Body)
		}
	}
	failed := waitFailed(t, svc, 1)
	if f := failed[0]; f.Sender != "libera:troll" || f.Room != "mx:"+string(w.roomID) || f.Text != "you all stink" ||
		!strings.Contains(f.Reason, "banned from "+string(w.roomID)+" on mx") {
		t.Errorf("failed delivery %+v", f)
	}

	if _, err := w.alice.UnbanUser(ctx, w.roomID, &mautrix.ReqUnbanUser{UserID: ghost}); err != nil {
		t.Fatal(err)
	}
	waitBlocks(t, svc, 0)
	troll.Say(room, "sorry")
	ev := w.waitMatrix(t, "troll's message after the unban", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "sorry"
	})
	if ev.Sender != ghost {
		t.Errorf("sent by %s, want the ghost %s", ev.Sender, ghost)
	}
}

// A kick alone lets the puppet back with its sender's next message; with
// kick_blocks the sender stays out until an operator lets them in.
func TestIRCKickBlocksOnlyWhenConfigured(t *testing.T) {
	for _, kickBlocks := range []bool{false, true} {
		t.Run(fmt.Sprintf("kick_blocks=%v", kickBlocks), func(t *testing.T) {
			w := newWorld(t)
			op := w.human(t, "op")
			cfg := w.config(t, "puppet")
			cfg.Networks["libera"].KickBlocks = kickBlocks
			svc, _ := runService(t, cfg)
			const puppet = "spammer[devices]"
			w.publish(t, "spammer", "hello")
			op.WaitText(patience, room, puppet, "hello")
			op.Send("KICK", room, puppet, "calm down")
			if kickBlocks {
				// What spammer says once the kick holds; a line already on
				// its way as the op kicked may still get in.
				waitBlocks(t, svc, 1)
			}
			w.publish(t, "spammer", "back again")
			w.publish(t, "sensor", "canary")
			op.WaitText(patience, room, "sensor[devices]", "canary")
			if !kickBlocks {
				op.WaitText(patience, room, puppet, "back again")
				if n := len(failedList(t, svc)); n != 0 {
					t.Errorf("%d failed deliveries after a kick", n)
				}
				return
			}
			failed := waitFailed(t, svc, 1)
			if f := failed[0]; f.Text != "back again" || !strings.Contains(f.Reason, "kicked from #room on libera") {
				t.Errorf("failed delivery %+v", f)
			}
			for _, text := range messages(op, "") {
				if strings.Contains(text, "back again") {
					t.Errorf("a kicked sender's message reached the channel: %q", text)
				}
			}
			blocks := waitBlocks(t, svc, 1)
			if b := blocks[0]; b.Source != bridge.BlockKick || b.By != "op" {
				t.Errorf("block %+v", b)
			}
			// An operator lets spammer in again.
			if ok, err := svc.router.Unblock(context.Background(), blocks[0].Key()); !ok || err != nil {
				t.Fatalf("unblock: %v %v", ok, err)
			}
			w.publish(t, "spammer", "sorry")
			op.WaitText(patience, room, puppet, "sorry")
		})
	}
}

// A ban set before the sender's puppet ever existed: its JOIN is refused
// (474), and the message goes to the failed list rather than through the
// bot; the sender is told once. The -b lets the next message in.
func TestIRCBanFoundByRefusedJoin(t *testing.T) {
	w := newWorld(t)
	op := w.human(t, "op")
	svc, _ := runService(t, w.config(t, "puppet"))
	notices := w.mqtt.Subscribe(t, root+"/out/switchboard/#", 1)
	const mask = "newbie[devices]!*@*"
	op.Send("MODE", room, "+b", mask)
	if _, err := op.Wait(patience, func(l testenv.IRCLine) bool { return l.Command == "MODE" && l.Text() == mask }); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "newbie", "first words")
	w.publish(t, "newbie", "second words")
	w.publish(t, "sensor", "canary")
	op.WaitText(patience, room, "sensor[devices]", "canary")
	for _, text := range messages(op, "") {
		if strings.Contains(text, "words") {
			t.Errorf("a banned sender's message reached the channel: %q", text)
		}
	}
	failed := waitFailed(t, svc, 2)
	for _, f := range failed {
		if f.Sender != "devices:newbie" || !strings.Contains(f.Reason, "banned from #room on libera") {
			t.Errorf("failed delivery %+v", f)
		}
	}
	m := notices.Next(t, patience)
	if !strings.Contains(string(m.Payload), "banned from #room on libera") {
		t.Errorf("notice %s", m.Payload)
	}
	notices.Quiet(t, time.Second)

	op.Send("MODE", room, "-b", mask)
	waitBlocks(t, svc, 0)
	w.publish(t, "newbie", "hello at last")
	op.WaitText(patience, room, "newbie[devices]", "hello at last")
}
