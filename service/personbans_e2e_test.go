package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
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
	wantAliceBanned(t, w.svc, bridge.RoomAddr{Network: "libera", Room: room}, "op")
	banned := op.Len()

	w.alice.Text(w.roomID, "while banned")
	st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && s.Body() == "while banned"
	})
	if j := occupantJID(carol, w.room.String(), st.Nick()); !strings.HasPrefix(j, "alice@localhost/") {
		t.Errorf("the MUC shows it from %q (%q), want her own occupant", st.Nick(), j)
	}
	w.alice.Text(w.roomID, "still banned")
	// From another account of hers, the ban keeps her out just the same.
	laptop := w.xmpp.Client(t, "alice", xmppUsers["alice"])
	if err := laptop.Join(w.room, "alice-laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Say(w.room, "banned from my laptop"); err != nil {
		t.Fatal(err)
	}
	w.waitMatrix(t, "her XMPP message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "banned from my laptop"
	})
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
	failed := waitFailed(t, w.svc, 3)
	for _, f := range failed {
		if f.Room != "libera:"+room || !strings.Contains(f.Reason, "banned from #room on libera") ||
			f.Sender != "mx:@alice:localhost" && !strings.HasPrefix(f.Sender, "jabber:alice@localhost") {
			t.Errorf("failed delivery %+v: want hers, to libera:%s, banned", f, room)
		}
	}

	// She is told once, by the Matrix bot.
	_, notice := w.botNotice(t, "banned from #room on libera")
	time.Sleep(time.Second) // her later messages were refused too: no second notice
	if n := countEvents(w.alice, notice); n != 1 {
		t.Errorf("%d notices of the ban, want one", n)
	}

	// The ban is lifted: her next message reaches the channel from her.
	op.Send("MODE", room, "-b", mask)
	waitBlocks(t, w.svc, 0)
	w.alice.Text(w.roomID, "free again")
	op.WaitText(patience, room, "alice", "free again")
	if n := len(failedList(t, w.svc)); n != 3 {
		t.Errorf("%d failed deliveries after the ban was lifted, want 3", n)
	}
}

// Issue 21, item 3, on Matrix: a ban of alice's ghost in the Matrix room
// keeps her out of it, although her own Matrix user, which speaks for
// her there, is not banned: what she writes from IRC reaches the MUC but
// not the Matrix room, and is on the failed list with the ban.
func TestPersonWhoseGhostIsBannedStaysOutOfTheMatrixRoom(t *testing.T) {
	w := newPWorldAfter(t, alicePeople, func(w *pworld, cfg *config.Config) {
		cfg.HTTP.APIToken = apiToken // for /api/failed
	})
	carol := w.person(t, "carol")
	// The one ghost of the person alice (home mx, ghost_localpart
	// sb_{network}_{id}); the room's creator bans it.
	ghost := id.NewUserID("sb_mx_person=2falice", w.mx.Domain)
	// It exists (it spoke for her once, while her own user could not):
	// Dendrite bans only users it knows.
	as, err := mautrix.NewClient(w.hs.URL, "", w.mx.ASToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := as.Register(context.Background(), &mautrix.ReqRegister[any]{
		Username: ghost.Localpart(), Type: mautrix.AuthTypeAppservice, InhibitLogin: true,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.Client.BanUser(context.Background(), w.roomID, &mautrix.ReqBanUser{UserID: ghost, Reason: "no bridging"}); err != nil {
		t.Fatal(err)
	}
	wantAliceBanned(t, w.svc, bridge.RoomAddr{Network: "mx", Room: string(w.roomID)}, string(w.alice.UserID))
	phone := w.services.Login(t, "alicephone", "alice", "alice-pw")
	phone.Join(room)
	w.keptOutOfMatrix(t, phone, carol, w.alice, "ghost banned")
}

// Issue 21, item 3, a ban of a person's own Matrix user: a moderator of
// the Matrix room bans @alice:localhost. What she writes on IRC reaches
// the MUC but not the Matrix room, neither from her user nor from a ghost
// of hers, and is on the failed list with the ban; the unban lets her
// own user speak there again.
func TestPersonBannedOnMatrixStaysOutFromEveryAccount(t *testing.T) {
	w := newPWorldAfter(t, alicePeople, func(w *pworld, cfg *config.Config) {
		cfg.HTTP.APIToken = apiToken // for /api/failed
	})
	carol := w.person(t, "carol")
	mod := w.hs.Client(t, "mod")
	mod.Join(string(w.roomID))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var pl event.PowerLevelsEventContent
	if err := w.alice.Client.StateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	// mod runs the room now; a ban needs a level above the target's.
	pl.SetUserLevel(mod.UserID, 100)
	pl.SetUserLevel(w.alice.UserID, 50)
	if _, err := w.alice.Client.SendStateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Client.BanUser(ctx, w.roomID, &mautrix.ReqBanUser{UserID: w.alice.UserID, Reason: "enough"}); err != nil {
		t.Fatal(err)
	}
	wantAliceBanned(t, w.svc, bridge.RoomAddr{Network: "mx", Room: string(w.roomID)}, string(mod.UserID))
	phone := w.services.Login(t, "alicephone", "alice", "alice-pw")
	phone.Join(room)
	w.keptOutOfMatrix(t, phone, carol, mod, "banned on matrix")

	// The room shows her banned all along: nothing of the bridge's, her
	// own user included, changed that.
	_, at, err := mod.WaitFor(ctx, 0, func(ev *event.Event) bool {
		return ev.Type == event.StateMember && ev.GetStateKey() == string(w.alice.UserID) &&
			ev.Content.AsMember().Membership == event.MembershipBan
	})
	if err != nil {
		t.Fatalf("mod never saw alice banned: %v", err)
	}
	for _, ev := range mod.Events()[at:] {
		if ev.Type == event.StateMember && ev.GetStateKey() == string(w.alice.UserID) && ev.Sender == w.alice.UserID {
			t.Errorf("her own user's membership changed after the ban: %s", ev.Content.AsMember().Membership)
		}
	}
	if _, err := mod.Client.UnbanUser(ctx, w.roomID, &mautrix.ReqUnbanUser{UserID: w.alice.UserID}); err != nil {
		t.Fatal(err)
	}
	waitBlocks(t, w.svc, 0)
	phone.Say(room, "unbanned")
	ev, _, err := mod.WaitFor(ctx, 0, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "unbanned"
	})
	if err != nil {
		t.Fatalf("her message after the unban never reached the Matrix room: %v", err)
	}
	if ev.Sender != w.alice.UserID {
		t.Errorf("after the unban her message came from %s, want her own user", ev.Sender)
	}
}

// wantAliceBanned waits until the bridge keeps one block, and checks it
// is the person alice's (not an account's), banned from room by by.
func wantAliceBanned(t *testing.T, svc *Service, room bridge.RoomAddr, by string) {
	t.Helper()
	b := waitBlocks(t, svc, 1)[0]
	if b.Sender != (bridge.SenderRef{Network: "mx", ID: "person/alice"}) || b.Source != bridge.BlockBan || b.Room != room || b.By != by {
		t.Errorf("block %+v, want the person alice banned from %s by %s", b, room, by)
	}
}

// keptOutOfMatrix has alice say text from phone, an IRC client of hers,
// while she is kept out of the Matrix room: it reaches the MUC (carol)
// but not the Matrix room (as viewer sees it), and it is the one failed
// delivery, refused as banned.
func (w *pworld) keptOutOfMatrix(t *testing.T, phone *testenv.IRCClient, carol *testenv.XMPPClient, viewer *testenv.MatrixClient, text string) {
	t.Helper()
	phone.Say(room, text)
	carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && s.Body() == text
	})
	f := waitFailed(t, w.svc, 1)[0]
	if f.Room != "mx:"+string(w.roomID) || f.Text != text || !strings.Contains(f.Reason, "banned from") {
		t.Errorf("failed delivery %+v: want hers to the Matrix room, banned", f)
	}
	for _, ev := range viewer.Events() {
		if c, ok := messageText(ev); ok && c.Body == text {
			t.Errorf("her message reached the Matrix room from %s despite the ban", ev.Sender)
		}
	}
}
