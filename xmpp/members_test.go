package xmpp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// members records the member lists the adapter gives the bridge.
type members struct{ got chan string }

func (m members) Accept(context.Context, bridge.Event) error { return nil }
func (m members) Online(string)                              {}
func (m members) Members(_ context.Context, room bridge.RoomAddr, accounts []string) error {
	m.got <- fmt.Sprint(room, slices.Sorted(slices.Values(accounts)))
	return nil
}

// When the bot's join of a MUC completes, the real bare JIDs of the
// occupants the room showed before its self-presence go to the bridge:
// neither the bot, a puppet, nor a person's own session, whose JID is
// theirs; her other client under another nick counts. A room that shows
// the bot no real JIDs gives no list at all: an empty one would take
// everyone out.
func TestMUCMembersAreRealJIDs(t *testing.T) {
	const open, semi = "lobby@conference.localhost", "anon@conference.localhost"
	alice := &personal{jid: jid.MustParse("alice@localhost")}
	a := &Adapter{name: "jabber", component: true, domain: "sb.localhost", queue: adapters.NewAcceptQueue(slog.Default())}
	newRoom := func(addr string) *room {
		r := &room{addr: addr, key: addr, jid: jid.MustParse(addr), personalNicks: map[string]*personal{"Alice": alice}}
		r.reset()
		return r
	}
	presence := func(r *room, nick, realJID string, codes ...int) {
		t.Helper()
		item := `<item affiliation="none" role="participant"/>`
		if realJID != "" {
			item = fmt.Sprintf(`<item affiliation="none" role="participant" jid=%q/>`, realJID)
		}
		var status string
		for _, c := range codes {
			status += fmt.Sprintf(`<status code="%d"/>`, c)
		}
		st, err := parse(fmt.Sprintf(`<presence from="%s/%s" to="sb.localhost"><x xmlns="http://jabber.org/protocol/muc#user">%s%s</x></presence>`, r.addr, nick, item, status), 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		a.onRoomPresence(nil, r, st)
	}
	got := members{got: make(chan string, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.queue.Run(ctx, got)

	r := newRoom(open)
	presence(r, "bob", "bob@localhost/phone")
	presence(r, "Alice", "alice@localhost/sb-session")
	presence(r, "alice-laptop", "alice@localhost/laptop")
	presence(r, "carol[irc]", "carol_irc@sb.localhost/sb")
	presence(r, "switchboard", "sb.localhost", statusRealJIDs, statusSelf)
	select {
	case l := <-got.got:
		if want := "jabber:" + open + " [alice@localhost bob@localhost]"; l != want {
			t.Errorf("members %s, want %s", l, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no member list after the bot's join")
	}

	s := newRoom(semi)
	presence(s, "bob", "")
	presence(s, "switchboard", "", statusSelf)
	// The bot's presence again (a status change) is no new join either.
	presence(r, "switchboard", "sb.localhost", statusRealJIDs, statusSelf)
	select {
	case l := <-got.got:
		t.Errorf("a member list %s where there should be none", l)
	case <-time.After(200 * time.Millisecond):
	}
}
