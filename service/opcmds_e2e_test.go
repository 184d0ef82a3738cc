package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// botSays matches a notice of the bot containing text.
func botSays(text string) func(testenv.IRCLine) bool {
	return func(l testenv.IRCLine) bool {
		return l.Command == "NOTICE" && strings.EqualFold(l.Nick(), "switchboard") && strings.Contains(l.Text(), text)
	}
}

// command has c say a chat command in #room and returns the bot's answer
// that contains want.
func command(t *testing.T, c *testenv.IRCClient, text, want string) testenv.IRCLine {
	t.Helper()
	from := c.Len()
	c.Say(room, text)
	l, err := c.WaitFrom(from, patience, botSays(want))
	if err != nil {
		t.Fatalf("%s said %q: no answer with %q: %v", c.Nick(), text, want, err)
	}
	return l
}

// mode has op change the channel mode of c in #room and waits until c
// sees it.
func mode(t *testing.T, op, c *testenv.IRCClient, change string) {
	t.Helper()
	from := c.Len()
	op.Send("MODE", room, change, c.Nick())
	if _, err := c.WaitFrom(from, patience, func(l testenv.IRCLine) bool {
		return l.Command == "MODE" && len(l.Params) == 3 && l.Params[1] == change && strings.EqualFold(l.Params[2], c.Nick())
	}); err != nil {
		t.Fatalf("MODE %s %s: %v", change, c.Nick(), err)
	}
}

// failedFrom lists the failed deliveries whose sender is sender.
func failedFrom(t *testing.T, base, sender string) []httpapi.Failed {
	t.Helper()
	var list struct {
		Failed []httpapi.Failed `json:"failed"`
	}
	code, body := apiCall(t, "GET", base+"/api/failed", apiToken, nil)
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/failed: %d %s %v", code, body, err)
	}
	var out []httpapi.Failed
	for _, f := range list.Failed {
		if f.Sender == sender {
			out = append(out, f)
		}
	}
	return out
}

// Issue 17, test 5: an IRC channel operator (not an admin) blocks an MQTT
// device from the channel; nothing of it reaches the channel, by puppet
// or, in relay mode, by the bot; a non-operator's attempt is refused; the
// block survives a restart; another operator lifts it and the device's
// messages flow again.
func TestChannelOperatorBlocksSender(t *testing.T) {
	w := newWorld(t)
	// oper makes #room, so the server gives her "@", before Switchboard
	// comes: the bot learns it from NAMES. Neither is an admin.
	oper := w.irc.Client(t, "oper")
	oper.Join(room)
	cfg := w.config(t, "puppet")
	svc, stop := runService(t, cfg)
	base := "http://" + svc.HTTPAddr
	bob := w.human(t, "bob")

	// A non-operator is refused, and nothing is blocked.
	command(t, bob, "!sb block devices:sensor-1", "only Switchboard admins and this room's operators")
	if st := getStatus(t, svc); len(st.Blocks) != 0 {
		t.Fatalf("blocks after a refused command: %+v", st.Blocks)
	}

	// Puppet names are resolved by the IRC adapter; unknown ones are said so.
	w.publish(t, "sensor-2", "sensor-2 is here")
	oper.WaitText(patience, room, "sensor-2[devices]", "sensor-2 is here")
	command(t, oper, "!sb block nobody[devices]", `No one bridged into libera:#room is named "nobody[devices]"`)
	command(t, oper, "!sb block sensor-2[devices]", "Blocked devices:sensor-2 from libera:#room")
	command(t, oper, "!sb unblock devices:sensor-2", "Unblocked devices:sensor-2 in libera:#room")
	command(t, oper, "!sb block libera:bob", "use the room's own ban")

	command(t, oper, "!sb block devices:sensor-1", "Blocked devices:sensor-1 from libera:#room")
	st := getStatus(t, svc)
	if len(st.Blocks) != 1 || st.Blocks[0].Room != "libera:#room" || st.Blocks[0].Sender != "devices:sensor-1" ||
		st.Blocks[0].Source != "operator" || st.Blocks[0].Reason != "blocked from #room on libera by oper" || st.Blocks[0].By != "libera:oper" {
		t.Fatalf("/api/status blocks %+v", st.Blocks)
	}
	waitMetrics(t, svc, map[string]float64{`switchboard_blocks{network="libera",room="#room"}`: 1})
	if _, page := httpGet(t, base+"/status"); !strings.Contains(page, `data-sender="devices:sensor-1"`) || !strings.Contains(page, "blocked from #room on libera by oper") {
		t.Errorf("/status does not show the block:\n%s", page)
	}

	// Puppet mode: sensor-1's message goes to the failed list, sensor-2's
	// arrives.
	w.publish(t, "sensor-1", "puppet mode, blocked")
	w.publish(t, "sensor-2", "puppet mode, flowing")
	oper.WaitText(patience, room, "sensor-2[devices]", "puppet mode, flowing")
	waitFor(t, "sensor-1's message on the failed list", func() bool { return len(failedFrom(t, base, "devices:sensor-1")) == 1 })
	if f := failedFrom(t, base, "devices:sensor-1")[0]; f.Text != "puppet mode, blocked" || !strings.Contains(f.Reason, "blocked from #room on libera by oper") {
		t.Errorf("failed delivery %+v", f)
	}

	// The operator turns relay mode on; the bot posts nothing of sensor-1.
	command(t, oper, "!sb relay on", "Relay mode on for libera:#room")
	w.publish(t, "sensor-1", "relay mode, blocked")
	w.publish(t, "sensor-2", "relay mode, flowing")
	oper.WaitText(patience, room, "switchboard", "<sensor-2> relay mode, flowing")
	waitFor(t, "sensor-1's second message on the failed list", func() bool { return len(failedFrom(t, base, "devices:sensor-1")) == 2 })

	// The block survives a restart.
	stop()
	svc, _ = runService(t, cfg)
	base = "http://" + svc.HTTPAddr
	w.publish(t, "sensor-1", "after the restart, blocked")
	w.publish(t, "sensor-2", "after the restart, flowing")
	oper.WaitText(patience, room, "switchboard", "<sensor-2> after the restart, flowing")
	waitFor(t, "sensor-1's third message on the failed list", func() bool { return len(failedFrom(t, base, "devices:sensor-1")) == 3 })
	command(t, oper, "!sb blocks", "1 blocked from libera:#room")
	command(t, oper, "!sb blocks", "devices:sensor-1: blocked from #room on libera by oper (operator, by libera:oper, since ")

	// oper makes bob an operator: the bot follows the MODE, and bob may
	// lift the block.
	command(t, bob, "!sb blocks", "only Switchboard admins and this room's operators")
	mode(t, oper, bob, "+o")
	command(t, bob, "!sb unblock devices:sensor-1", "Unblocked devices:sensor-1 in libera:#room")
	w.publish(t, "sensor-1", "unblocked, flowing")
	oper.WaitText(patience, room, "switchboard", "<sensor-1> unblocked, flowing")
	if st := getStatus(t, svc); len(st.Blocks) != 0 {
		t.Errorf("blocks after the unblock: %+v", st.Blocks)
	}
	// Once no longer an operator, bob is refused again; relay and link
	// stay the admins' and operators'.
	mode(t, oper, bob, "-o")
	command(t, bob, "!sb relay off", "only Switchboard admins and this room's operators")
	command(t, oper, "!sb link devices:"+root2, "the rest is for Switchboard admins")

	// Nothing sensor-1 said while blocked ever reached the channel.
	for _, c := range []*testenv.IRCClient{oper, bob} {
		for _, l := range c.Messages(nil) {
			if strings.Contains(l.Text(), "blocked") && !strings.EqualFold(l.Nick(), "switchboard") {
				t.Errorf("%s saw %s", c.Nick(), l.Raw)
			}
			if strings.Contains(l.Text(), ", blocked") && strings.HasPrefix(l.Text(), "<") {
				t.Errorf("%s saw the bot relay a blocked message: %s", c.Nick(), l.Raw)
			}
		}
	}
}

// command has c say a chat command in the MUC and returns the bot's
// answer that contains want.
func (w *xworld) command(t *testing.T, c *testenv.XMPPClient, text, want string) {
	t.Helper()
	from := c.Len()
	if _, err := c.Say(w.room, text); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFrom(from, patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && strings.HasPrefix(s.From(), w.room.String()+"/") && strings.Contains(s.Body(), want)
	}); err != nil {
		t.Fatalf("%q: no answer with %q: %v", text, want, err)
	}
}

// Operators on XMPP: the MUC's owner (who made the room, so Prosody
// makes her owner and moderator) may block a sender there; an ordinary
// participant may not. The block is of that room alone: the device still
// reaches IRC.
func TestMUCOwnerBlocksSender(t *testing.T) {
	w := newXWorld(t)
	alice := w.person(t, "alice") // first in: the room's owner
	cfg := w.config(t, "puppet")
	cfg.HTTP.APIToken = apiToken
	svc, _ := runService(t, cfg)
	carol := w.person(t, "carol")
	bob := w.human(t, "bob")

	w.command(t, carol, "!sb block devices:sensor-1", "only Switchboard admins and this room's operators")
	w.command(t, alice, "!sb block devices:sensor-1", "Blocked devices:sensor-1 from jabber:"+w.room.String())
	if st := getStatus(t, svc); len(st.Blocks) != 1 || st.Blocks[0].Reason != "blocked from "+w.room.String()+" on jabber by alice" {
		t.Fatalf("/api/status blocks %+v", st.Blocks)
	}
	from := alice.Len()
	w.publish(t, "sensor-1", "kept out of the MUC")
	w.publish(t, "sensor-2", "let into the MUC")
	bob.WaitText(patience, room, "sensor-1[devices]", "kept out of the MUC")
	alice.WaitMessage(patience, groupchatFrom(w.room, "sensor-2 (devices)", "let into the MUC"))
	waitFor(t, "sensor-1's message on the failed list", func() bool {
		return len(failedFrom(t, "http://"+svc.HTTPAddr, "devices:sensor-1")) == 1
	})
	// A puppet by its occupant nick, spaces and all.
	w.command(t, alice, "!sb block sensor-2 (devices)", "Blocked devices:sensor-2 from jabber:"+w.room.String())
	w.command(t, alice, "!sb unblock devices:sensor-2", "Unblocked devices:sensor-2")
	for _, s := range alice.Stanzas()[from:] {
		if strings.Contains(s.Body(), "kept out of the MUC") {
			t.Errorf("the MUC got sensor-1's message: %s", s.From())
		}
	}
}

// command has c say a chat command in the Matrix room and waits for
// the bot's answer that contains want.
func (w *mworld) command(t *testing.T, c *testenv.MatrixClient, text, want string) {
	t.Helper()
	from := len(c.Events())
	c.Text(w.roomID, text)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	bot := id.NewUserID(w.mx.Bot, w.mx.Domain)
	if _, _, err := c.WaitFor(ctx, from, func(ev *event.Event) bool {
		m, ok := messageText(ev)
		return ok && ev.RoomID == w.roomID && ev.Sender == bot && strings.Contains(m.Body, want)
	}); err != nil {
		t.Fatalf("%s said %q: no answer with %q: %v", c.UserID, text, want, err)
	}
}

// Operators on Matrix: the room's creator (power level 100) may block; a
// user at the default level may not until the creator raises them to the
// room's kick level, and then may lift the block.
func TestMatrixPowerLevelOperatorBlocksSender(t *testing.T) {
	w := newMWorld(t)
	dave := w.hs.Client(t, "dave")
	dave.Join(string(w.roomID))
	svc, _ := runService(t, w.config(t, ""))
	mxRoom := "mx:" + string(w.roomID)

	w.command(t, dave, "!sb block devices:sensor-1", "only Switchboard admins and this room's operators")
	w.command(t, w.alice, "!sb block devices:sensor-1", "Blocked devices:sensor-1 from "+mxRoom)
	from := len(w.alice.Events())
	w.publish(t, "sensor-1", "kept out of matrix")
	w.publish(t, "sensor-2", "let into matrix")
	w.waitMatrix(t, "sensor-2's message", func(ev *event.Event) bool {
		m, ok := messageText(ev)
		return ok && m.Body == "let into matrix"
	})
	waitFor(t, "the block in /api/status", func() bool { return len(getStatus(t, svc).Blocks) == 1 })
	// A puppet by its ghost's MXID.
	w.command(t, w.alice, "!sb block @sb_devices_sensor-2:localhost", "Blocked devices:sensor-2 from "+mxRoom)
	w.command(t, w.alice, "!sb unblock devices:sensor-2", "Unblocked devices:sensor-2")
	w.command(t, w.alice, "!sb block @sb_devices_nobody:localhost", `No one bridged into `+mxRoom+` is named "@sb_devices_nobody:localhost"`)

	// alice raises dave to the kick level; the homeserver pushes the new
	// power levels.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var pl event.PowerLevelsEventContent
	if err := w.alice.StateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl.SetUserLevel(dave.UserID, pl.Kick())
	if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	w.command(t, dave, "!sb unblock devices:sensor-1", "Unblocked devices:sensor-1 in "+mxRoom)
	w.publish(t, "sensor-1", "unblocked into matrix")
	w.waitMatrix(t, "sensor-1's message after the unblock", func(ev *event.Event) bool {
		m, ok := messageText(ev)
		return ok && m.Body == "unblocked into matrix"
	})
	for _, ev := range w.alice.Events()[from:] {
		if m, ok := messageText(ev); ok && strings.Contains(m.Body, "kept out of matrix") {
			t.Errorf("the Matrix room got sensor-1's blocked message from %s", ev.Sender)
		}
	}
}
