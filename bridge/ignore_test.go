package bridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// dropping is counting that is also told of drops.
type dropping struct{ *counting }

func (d dropping) Dropped(network, reason string) {
	d.mu.Lock()
	d.counts["dropped "+network+"/"+reason]++
	d.mu.Unlock()
}

func ircMsg(room, nick, mask, remoteID, text string) *bridge.Message {
	m := msg("irc", room, nick, remoteID, text)
	m.Sender.Mask = mask
	return m
}

// Events of ignored senders, of every kind, are neither delivered nor
// stored, and are counted; the network's list applies in every link and
// to direct messages, a link's only in that link.
func TestIgnoredSendersAreNotBridged(t *testing.T) {
	irc, mqtt, matrix := newPlain(), directPlain{newPlain()}, newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	ignores, err := mapping.NewIgnores(map[string]mapping.NetworkIgnore{
		"irc":  {Type: "irc", Patterns: append(mapping.IRCServices, "*bot*")},
		"mqtt": {Type: "mqtt"},
	}, map[string][]string{"lobby": {"sensor-*"}})
	if err != nil {
		t.Fatal(err)
	}
	obs := dropping{&counting{counts: map[string]int{}}}
	f.router.Observer, f.router.Ignore = obs, ignores

	accept(t, f.router, ircMsg("#lobby", "NickServ", "NickServ!NickServ@services.test", "n1", "This nickname is registered"))
	accept(t, f.router, ircMsg("#lobby", "newsbot", "newsbot!news@example.org", "b1", "headline"))
	accept(t, f.router, &bridge.Join{Header: ircMsg("#lobby", "newsbot", "newsbot!news@example.org", "", "").Header})
	accept(t, f.router, &bridge.Typing{Header: ircMsg("#lobby", "newsbot", "newsbot!news@example.org", "", "").Header, Active: true})
	accept(t, f.router, msg("mqtt", "chat/lobby", "sensor-1", "s1", "21.5"))
	// Only the network's list applies to a direct message.
	dm := ircMsg("", "NickServ", "NickServ!NickServ@services.test", "d1", "identify first")
	dm.To = &bridge.Sender{Network: "mqtt", ID: "dev"}
	accept(t, f.router, dm)

	accept(t, f.router, msg("mqtt", "chat/ops", "sensor-1", "s2", "ops reading"))
	accept(t, f.router, ircMsg("#lobby", "alice", "alice!a@example.org", "a1", "hello"))

	if got := texts(mqtt.waitRoom(t, "chat/lobby", 1)); strings.Join(got, "|") != "hello" {
		t.Errorf("mqtt lobby got %q, want only alice's hello", got)
	}
	if got := texts(matrix.waitRoom(t, "!lobby", 1)); strings.Join(got, "|") != "hello" {
		t.Errorf("matrix lobby got %q, want only alice's hello", got)
	}
	if got := texts(irc.waitRoom(t, "#ops", 1)); strings.Join(got, "|") != "ops reading" {
		t.Errorf("irc ops got %q: the lobby's list must not apply in ops", got)
	}
	f.waitDepth(t, 0)
	time.Sleep(50 * time.Millisecond)
	if got := texts(matrix.room("!lobby")); len(got) != 1 {
		t.Errorf("matrix lobby got %q", got)
	}
	if got := mqtt.room(""); len(got) != 0 {
		t.Errorf("NickServ's direct message was delivered: %q", texts(got))
	}
	ctx := context.Background()
	for _, c := range []struct{ room, remote string }{{"#lobby", "n1"}, {"#lobby", "b1"}, {"chat/lobby", "s1"}} {
		network := "irc"
		if !strings.HasPrefix(c.room, "#") {
			network = "mqtt"
		}
		if _, err := f.store.EventByRemote(ctx, bridge.RoomAddr{Network: network, Room: c.room}, c.remote); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("ignored event %s in %s: stored (err %v)", c.remote, c.room, err)
		}
	}
	if got := obs.get("dropped irc/ignored"); got != 5 {
		t.Errorf("irc drops counted %d, want 5 (NickServ twice, the bot's message, join and typing)", got)
	}
	if got := obs.get("dropped mqtt/ignored"); got != 1 {
		t.Errorf("mqtt drops counted %d, want 1", got)
	}
	if got := obs.get("accepted irc/join") + obs.get("accepted irc/typing"); got != 0 {
		t.Errorf("an ignored sender's join or typing was accepted (%d)", got)
	}

	// New lists take effect at once.
	if err := ignores.Replace(map[string]mapping.NetworkIgnore{"irc": {Type: "irc"}}, nil); err != nil {
		t.Fatal(err)
	}
	accept(t, f.router, ircMsg("#lobby", "newsbot", "newsbot!news@example.org", "b2", "welcome back"))
	if got := texts(mqtt.waitRoom(t, "chat/lobby", 2)); got[1] != "welcome back" {
		t.Errorf("after the list was emptied, mqtt lobby got %q", got)
	}
}
