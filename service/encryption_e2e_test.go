package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/status"
)

// A linked Matrix room that turns encrypted says so, once, in every room
// of its link, and the status flags it; nothing said in it can be read
// any more, and nothing makes the notice come again: not the room's
// encrypted messages, not a restart.
func TestEncryptedMatrixRoomSaysSoOnce(t *testing.T) {
	w := newMWorld(t)
	cfg := w.config(t, "")
	svc, stop := runService(t, cfg)
	waitReady(t, svc)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")
	// Everyone is in before the room turns.
	bob.Say(room, "before")
	w.waitMatrix(t, "bob's first line", func(ev *event.Event) bool { c, ok := messageText(ev); return ok && c.Body == "before" })

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StateEncryption, "",
		&event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
		t.Fatal(err)
	}

	ircNotice := func(l testenv.IRCLine) bool {
		return l.Command == "NOTICE" && l.Target() == room && strings.Contains(l.Text(), "The Matrix room "+string(w.roomID)+" is encrypted")
	}
	xmppNotice := func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && strings.Contains(s.Body(), "The Matrix room "+string(w.roomID)+" is encrypted")
	}
	matrixNotice := func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.MsgType == event.MsgNotice && strings.HasPrefix(c.Body, "This room is encrypted")
	}
	if l := bob.WaitMessage(patience, ircNotice); l.Nick() != "switchboard" {
		t.Errorf("IRC notice from %q, want the bot", l.Nick())
	}
	carol.WaitMessage(patience, xmppNotice)
	w.waitMatrix(t, "the bot's notice", matrixNotice)

	st := getStatus(t, svc)
	if flags := roomFlags(st.Links, "mx:"+string(w.roomID)); !slices.Equal(flags, []string{adapters.FlagEncrypted}) {
		t.Errorf("/api/status flags of the Matrix room: %q, want [encrypted]", flags)
	}
	if flags := roomFlags(st.Links, "libera:"+room); len(flags) != 0 {
		t.Errorf("/api/status flags the IRC channel: %q", flags)
	}
	if _, page := httpGet(t, "http://"+svc.HTTPAddr+"/status"); !strings.Contains(page, "encrypted: Switchboard cannot read it") {
		t.Errorf("/status does not flag the encrypted room")
	}

	// What alice's client now sends is encrypted: nothing of it is
	// bridged, and it brings no second notice.
	if _, err := w.alice.SendMessageEvent(ctx, w.roomID, event.EventEncrypted, map[string]any{
		"algorithm": id.AlgorithmMegolmV1, "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg", "device_id": "ALICEDEV",
		"sender_key": "FSVvO5HOQlxNbn5XlVKr4J3VvWkPbrw0ZU4ysaGSeYA", "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
	}); err != nil {
		t.Fatal(err)
	}
	// Messages from the other rooms still arrive there.
	bob.Say(room, "after")
	w.waitMatrix(t, "bob's line after", func(ev *event.Event) bool { c, ok := messageText(ev); return ok && c.Body == "after" })
	stop()

	svc, _ = runService(t, cfg)
	waitReady(t, svc)
	bob.Say(room, "after the restart")
	w.waitMatrix(t, "bob's line after the restart", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "after the restart"
	})
	carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool { return s.Body() == "after the restart" })
	// The notice would come in the same order as that line, or before.
	time.Sleep(500 * time.Millisecond)
	if n := len(bob.Messages(ircNotice)); n != 1 {
		t.Errorf("IRC got the notice %d times, want once", n)
	}
	if n := countStanzas(carol, xmppNotice); n != 1 {
		t.Errorf("XMPP got the notice %d times, want once", n)
	}
	if n := countEvents(w.alice, matrixNotice); n != 1 {
		t.Errorf("Matrix got the notice %d times, want once", n)
	}
	if flags := roomFlags(getStatus(t, svc).Links, "mx:"+string(w.roomID)); !slices.Equal(flags, []string{adapters.FlagEncrypted}) {
		t.Errorf("/api/status after the restart flags the Matrix room %q", flags)
	}
}

func roomFlags(links []status.Link, room string) []string {
	for _, l := range links {
		for _, r := range l.Rooms {
			if r.Room == room {
				return r.Flags
			}
		}
	}
	return nil
}

func countStanzas(c *testenv.XMPPClient, match func(testenv.XMPPStanza) bool) int {
	n := 0
	for _, s := range c.Stanzas() {
		if match(s) {
			n++
		}
	}
	return n
}
