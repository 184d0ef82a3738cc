package chatcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/status"
)

// cmdFakeLinks is a Links over an in-memory link set that records
// every change.
type cmdFakeLinks struct {
	links   map[string][]bridge.RoomAddr
	relayed map[bridge.RoomAddr]bool
	calls   []string
	fail    error // returned by every change when set
}

func (f *cmdFakeLinks) LinkOf(room bridge.RoomAddr) (string, []bridge.RoomAddr, bool) {
	for name, rooms := range f.links {
		if slices.Contains(rooms, room) {
			return name, slices.Clone(rooms), true
		}
	}
	return "", nil, false
}

func (f *cmdFakeLinks) LinkRooms(_ context.Context, anchor, room bridge.RoomAddr) (string, error) {
	f.calls = append(f.calls, fmt.Sprintf("link %s %s", anchor, room))
	if f.fail != nil {
		return "", f.fail
	}
	name, _, ok := f.LinkOf(anchor)
	if !ok {
		name = "new"
		f.links[name] = []bridge.RoomAddr{anchor}
	}
	f.links[name] = append(f.links[name], room)
	return name, nil
}

func (f *cmdFakeLinks) UnlinkRoom(_ context.Context, room bridge.RoomAddr) error {
	f.calls = append(f.calls, fmt.Sprintf("unlink %s", room))
	if f.fail != nil {
		return f.fail
	}
	name, _, _ := f.LinkOf(room)
	f.links[name] = slices.DeleteFunc(f.links[name], func(r bridge.RoomAddr) bool { return r == room })
	return nil
}

func (f *cmdFakeLinks) SetRelay(_ context.Context, room bridge.RoomAddr, on bool) error {
	f.calls = append(f.calls, fmt.Sprintf("relay %s %v", room, on))
	if f.fail != nil {
		return f.fail
	}
	f.relayed[room] = on
	return nil
}

func (f *cmdFakeLinks) Relayed(room bridge.RoomAddr) bool { return f.relayed[room] }

// cmdFakeBot is an adapter's bot; it records what it says.
type cmdFakeBot struct {
	mu    sync.Mutex
	said  []string // "room|user|text"
	fail  error
	calls int
}

func (b *cmdFakeBot) SendAsBot(_ context.Context, room, user, text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail != nil {
		return b.fail
	}
	b.said = append(b.said, room+"|"+user+"|"+text)
	return nil
}

// cmdFakeNext is the router: it records what reaches it.
type cmdFakeNext struct {
	accepted []bridge.Event
	online   []string
}

func (n *cmdFakeNext) Accept(_ context.Context, ev bridge.Event) error {
	n.accepted = append(n.accepted, ev)
	return nil
}

func (n *cmdFakeNext) Online(network string) { n.online = append(n.online, network) }

type cmdWorld struct {
	c     *Commands
	links *cmdFakeLinks
	next  *cmdFakeNext
	bots  map[string]*cmdFakeBot
}

var (
	roomA = bridge.RoomAddr{Network: "libera", Room: "#a"}
	roomB = bridge.RoomAddr{Network: "libera", Room: "#b"}
	roomM = bridge.RoomAddr{Network: "devices", Room: "chat/a"}
	roomX = bridge.RoomAddr{Network: "matrix", Room: "!x:hs"}
)

func newCmdWorld(t *testing.T) *cmdWorld {
	t.Helper()
	admins, err := mapping.ParseAdmins([]string{"libera:*!*@ops.example.org", "matrix:@ops:hs", "mqtt:panel"})
	if err != nil {
		t.Fatal(err)
	}
	w := &cmdWorld{
		links: &cmdFakeLinks{
			links:   map[string][]bridge.RoomAddr{"lobby": {roomA, roomM}},
			relayed: map[bridge.RoomAddr]bool{roomM: true},
		},
		next: &cmdFakeNext{},
		bots: map[string]*cmdFakeBot{},
	}
	statusOf := func(context.Context) status.Status {
		return status.Status{
			Networks: []status.Network{{Name: "devices", State: "up", For: 60}, {Name: "libera", State: "down", For: 5}},
			Outbox:   status.Outbox{Depth: 7, Failed: 2},
		}
	}
	w.c = New(w.next, w.links, statusOf, admins, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for name, typ := range map[string]string{"libera": "irc", "matrix": "matrix", "devices": "mqtt"} {
		w.bots[name] = &cmdFakeBot{}
		w.c.AddNetwork(name, typ, w.bots[name])
	}
	return w
}

// ircAdmin and ircUser are senders on libera; the user took the admin's
// nick, but not their host.
var (
	ircAdmin = bridge.Sender{Network: "libera", ID: "op", Name: "op", Mask: "op!~op@ops.example.org"}
	ircUser  = bridge.Sender{Network: "libera", ID: "op", Name: "op", Mask: "op!~op@evil.example"}
)

func roomMsg(room bridge.RoomAddr, from bridge.Sender, text string) *bridge.Message {
	return &bridge.Message{Header: bridge.Header{Origin: bridge.Origin{Network: room.Network, Room: room.Room, RemoteID: "r1"}, Sender: from}, Text: text}
}

func directMsg(from bridge.Sender, text string) *bridge.Message {
	bot := bridge.Sender{Network: from.Network, ID: "switchboard"}
	return &bridge.Message{Header: bridge.Header{Origin: bridge.Origin{Network: from.Network}, Sender: from, To: &bot}, Text: text}
}

// say runs one event through the commands; Accept must never fail.
func (w *cmdWorld) say(t *testing.T, ev bridge.Event) {
	t.Helper()
	if err := w.c.Accept(context.Background(), ev); err != nil {
		t.Fatalf("Accept: %v", err)
	}
}

// replies returns and forgets what the bot of network said.
func (w *cmdWorld) replies(network string) []string {
	b := w.bots[network]
	b.mu.Lock()
	defer b.mu.Unlock()
	said := b.said
	b.said = nil
	return said
}

func wantReply(t *testing.T, got []string, want ...string) {
	t.Helper()
	all := strings.Join(got, "\n")
	if len(got) == 0 {
		t.Fatalf("no reply; want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("reply lacks %q:\n%s", w, all)
		}
	}
}

func TestCommandLinkByAdmin(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, roomMsg(roomA, ircAdmin, "  !sb link libera:#b  "))
	if want := []string{"link libera:#a libera:#b"}; !slices.Equal(w.links.calls, want) {
		t.Errorf("calls = %q, want %q", w.links.calls, want)
	}
	got := w.replies("libera")
	wantReply(t, got, `Linked libera:#b into link "lobby"`, "libera:#a (relay off)", "devices:chat/a (relay on)", "libera:#b (relay off)")
	if !strings.HasPrefix(got[0], "#a||") {
		t.Errorf("reply not in the room: %q", got)
	}
	if len(w.next.accepted) != 0 {
		t.Errorf("the command reached the router: %v", w.next.accepted)
	}

	w.say(t, roomMsg(roomA, ircAdmin, "!sb link libera:#b"))
	wantReply(t, w.replies("libera"), `libera:#b is already in link "lobby"`)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb link libera:#a"))
	wantReply(t, w.replies("libera"), "cannot be linked to itself")
	if len(w.links.calls) != 1 {
		t.Errorf("calls = %q", w.links.calls)
	}
}

func TestCommandLinkErrorShown(t *testing.T) {
	w := newCmdWorld(t)
	w.links.fail = errors.New(`links.other: libera:#b is already in link "other"`)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb link libera:#b"))
	wantReply(t, w.replies("libera"), "Could not link libera:#b", `already in link "other"`)
}

func TestCommandRefusedForNonAdmin(t *testing.T) {
	w := newCmdWorld(t)
	for _, s := range []bridge.Sender{
		ircUser,
		{Network: "libera", ID: "op", Name: "op"}, // a nick alone, as the admin's
		{Network: "matrix", ID: "@eve:hs"},
		{Network: "devices", ID: "Panel"},
	} {
		room := map[string]bridge.RoomAddr{"libera": roomA, "matrix": roomX, "devices": roomM}[s.Network]
		for _, text := range []string{"!sb link libera:#b", "!sb unlink devices:chat/a", "!sb relay on", "!sb status", "!sb help"} {
			w.say(t, roomMsg(room, s, text))
			wantReply(t, w.replies(s.Network), "only Switchboard admins")
		}
		w.say(t, directMsg(s, "!sb relay libera:#a on"))
		wantReply(t, w.replies(s.Network), "only Switchboard admins")
	}
	if len(w.links.calls) != 0 || len(w.next.accepted) != 0 {
		t.Errorf("a non-admin changed something: calls %q, passed on %d", w.links.calls, len(w.next.accepted))
	}
}

func TestCommandAdminByNetworkIdentity(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, roomMsg(roomX, bridge.Sender{Network: "matrix", ID: "@ops:hs"}, "!sb relay on"))
	wantReply(t, w.replies("matrix"), "Relay mode on for matrix:!x:hs")
	w.say(t, roomMsg(roomM, bridge.Sender{Network: "devices", ID: "panel"}, "!sb relay off"))
	wantReply(t, w.replies("devices"), "Relay mode off for devices:chat/a")
	if want := []string{"relay matrix:!x:hs true", "relay devices:chat/a false"}; !slices.Equal(w.links.calls, want) {
		t.Errorf("calls = %q, want %q", w.links.calls, want)
	}
	// A sender of another network in a room can only be a puppet.
	w.say(t, roomMsg(roomX, bridge.Sender{Network: "devices", ID: "panel"}, "!sb relay off"))
	wantReply(t, w.replies("matrix"), "only Switchboard admins")
}

func TestCommandsNeverBridged(t *testing.T) {
	w := newCmdWorld(t)
	for _, text := range []string{"!sb", "!sb status", "  !sb help", "!sb bogus", "!sb\nlink libera:#b", "!sb\tstatus"} {
		w.say(t, roomMsg(roomA, ircAdmin, text))
		w.say(t, roomMsg(roomA, ircUser, text))
	}
	if len(w.next.accepted) != 0 {
		t.Errorf("commands reached the router: %d", len(w.next.accepted))
	}
	// Ordinary traffic, and text that only looks like a command, passes.
	passes := []bridge.Event{
		roomMsg(roomA, ircUser, "hello"),
		roomMsg(roomA, ircAdmin, "!sbx status"),
		roomMsg(roomA, ircAdmin, "say !sb status to see"),
		&bridge.Message{Header: roomMsg(roomA, ircAdmin, "").Header, Text: "!sb status", Emote: true},
		&bridge.Join{Header: roomMsg(roomA, ircUser, "").Header},
		&bridge.Reaction{Header: roomMsg(roomA, ircUser, "").Header, Key: "+1"},
		directMessageToPuppet(ircUser, "!sb status"), // for someone on another network
	}
	w.replies("libera")
	for _, ev := range passes {
		w.say(t, ev)
	}
	if len(w.next.accepted) != len(passes) {
		t.Errorf("%d of %d ordinary events reached the router", len(w.next.accepted), len(passes))
	}
	if got := w.replies("libera"); len(got) != 0 {
		t.Errorf("ordinary traffic got replies: %q", got)
	}
	w.c.Online("libera")
	if !slices.Equal(w.next.online, []string{"libera"}) {
		t.Errorf("Online not passed on: %q", w.next.online)
	}
}

func directMessageToPuppet(from bridge.Sender, text string) *bridge.Message {
	m := directMsg(from, text)
	m.To = &bridge.Sender{Network: "matrix", ID: "@bob:hs"}
	return m
}

func TestCommandDirect(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, directMsg(ircAdmin, "!sb link libera:#a matrix:!x:hs"))
	if want := []string{"link libera:#a matrix:!x:hs"}; !slices.Equal(w.links.calls, want) {
		t.Errorf("calls = %q, want %q", w.links.calls, want)
	}
	got := w.replies("libera")
	wantReply(t, got, `Linked matrix:!x:hs into link "lobby"`)
	if !strings.HasPrefix(got[0], "|op|") {
		t.Errorf("reply not private to the sender: %q", got)
	}

	w.say(t, directMsg(ircAdmin, "!sb relay libera:#a on"))
	wantReply(t, w.replies("libera"), "Relay mode on for libera:#a")
	w.say(t, directMsg(ircAdmin, "!sb unlink libera:#a devices:chat/a"))
	wantReply(t, w.replies("libera"), `Unlinked devices:chat/a from link "lobby"`)
	w.say(t, directMsg(ircAdmin, "!sb status libera:#a"))
	wantReply(t, w.replies("libera"), `Room libera:#a is in link "lobby"`, "libera:#a (relay on)", "Outbox: 7 waiting, 2 failed")
	if want := []string{"link libera:#a matrix:!x:hs", "relay libera:#a true", "unlink devices:chat/a"}; !slices.Equal(w.links.calls, want) {
		t.Errorf("calls = %q, want %q", w.links.calls, want)
	}

	// Without the room, a direct command says how to name it.
	for _, text := range []string{"!sb link matrix:!x:hs", "!sb relay on"} {
		w.say(t, directMsg(ircAdmin, text))
		wantReply(t, w.replies("libera"), "help")
	}
	w.say(t, directMsg(ircAdmin, "!sb link"))
	wantReply(t, w.replies("libera"), "By direct message, name the room first")
	if len(w.links.calls) != 3 || len(w.next.accepted) != 0 {
		t.Errorf("calls %q, passed on %d", w.links.calls, len(w.next.accepted))
	}
}

func TestCommandDirectNonCommandHint(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, directMsg(ircUser, "hi bot"))
	got := w.replies("libera")
	wantReply(t, got, `"!sb help"`)
	if len(got) != 1 || !strings.HasPrefix(got[0], "|op|") {
		t.Errorf("hint = %q, want one private line", got)
	}
	notice := directMsg(ircUser, "hi bot")
	notice.Notice = true
	w.say(t, notice)
	w.say(t, &bridge.Typing{Header: directMsg(ircUser, "").Header, Active: true})
	if got := w.replies("libera"); len(got) != 0 {
		t.Errorf("a notice or typing got a reply: %q", got)
	}
	if len(w.next.accepted) != 0 {
		t.Errorf("something said to the bot reached the router: %d", len(w.next.accepted))
	}
}

func TestCommandUnlink(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb unlink libera:#b"))
	wantReply(t, w.replies("libera"), `libera:#b is not in link "lobby"`)
	w.say(t, roomMsg(roomB, ircAdmin, "!sb unlink libera:#a"))
	wantReply(t, w.replies("libera"), "libera:#b is not linked")
	if len(w.links.calls) != 0 {
		t.Fatalf("calls = %q", w.links.calls)
	}

	// Unlinking the room itself: the reply comes before the change.
	w.links.fail = errors.New("boom")
	w.bots["libera"].fail = nil
	w.say(t, roomMsg(roomA, ircAdmin, "!sb unlink libera:#a"))
	got := w.replies("libera")
	if len(got) != 2 || !strings.Contains(got[0], `Unlinking this room from link "lobby"`) || !strings.Contains(got[1], "Could not unlink libera:#a: boom") {
		t.Errorf("replies = %q", got)
	}
	w.links.fail = nil
	w.say(t, roomMsg(roomA, ircAdmin, "!sb unlink libera:#a"))
	wantReply(t, w.replies("libera"), "Unlinking this room")
	if _, _, ok := w.links.LinkOf(roomA); ok {
		t.Error("libera:#a still linked")
	}
	w.say(t, roomMsg(roomM, bridge.Sender{Network: "devices", ID: "panel"}, "!sb unlink libera:#a"))
	wantReply(t, w.replies("devices"), `libera:#a is not in link "lobby"`)
}

func TestCommandRelayAndHelp(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay"))
	wantReply(t, w.replies("libera"), "Relay mode is off for libera:#a")
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay ON"))
	wantReply(t, w.replies("libera"), "Relay mode on for libera:#a")
	if !w.links.Relayed(roomA) {
		t.Error("relay not on")
	}
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay maybe"))
	wantReply(t, w.replies("libera"), `"on" or "off", not "maybe"`)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay off now"))
	wantReply(t, w.replies("libera"), `Usage: "!sb relay on|off"`)
	w.links.fail = errors.New("store unavailable")
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay off"))
	wantReply(t, w.replies("libera"), "Could not turn relay mode off for libera:#a: store unavailable")
	if want := []string{"relay libera:#a true", "relay libera:#a false"}; !slices.Equal(w.links.calls, want) {
		t.Errorf("calls = %q, want %q", w.links.calls, want)
	}

	for _, text := range []string{"!sb help", "!sb"} {
		w.say(t, roomMsg(roomA, ircAdmin, text))
		wantReply(t, w.replies("libera"), "!sb status", "!sb link <network:room>", "!sb relay on|off", "By direct message", "!sb link <network:room> <network:room>")
	}
}

func TestCommandStatus(t *testing.T) {
	w := newCmdWorld(t)
	w.say(t, roomMsg(roomA, ircAdmin, "!sb status"))
	wantReply(t, w.replies("libera"), `Room libera:#a is in link "lobby": libera:#a (relay off), devices:chat/a (relay on)`,
		"devices up for 1m0s", "libera down for 5s", "Outbox: 7 waiting, 2 failed (see GET /api/failed).")
	w.say(t, roomMsg(roomB, ircAdmin, "!sb status"))
	wantReply(t, w.replies("libera"), "Room libera:#b is not linked")
	w.say(t, directMsg(ircAdmin, "!sb status"))
	got := w.replies("libera")
	wantReply(t, got, "Networks: devices up", "Outbox: 7")
	if strings.Contains(strings.Join(got, "\n"), "Room") {
		t.Errorf("a direct status without a room names one: %q", got)
	}
	w.say(t, roomMsg(roomA, ircAdmin, "!sb status libera:#b"))
	wantReply(t, w.replies("libera"), `Usage: "!sb status"`)
}

func TestCommandReplyFailureStillAccepted(t *testing.T) {
	w := newCmdWorld(t)
	w.bots["libera"].fail = errors.New("connection lost")
	w.say(t, roomMsg(roomA, ircAdmin, "!sb link libera:#b"))
	w.say(t, roomMsg(roomA, ircUser, "!sb status"))
	w.say(t, directMsg(ircUser, "hello"))
	if w.bots["libera"].calls != 3 {
		t.Errorf("SendAsBot called %d times, want 3", w.bots["libera"].calls)
	}
	if len(w.links.calls) != 1 || len(w.next.accepted) != 0 {
		t.Errorf("calls %q, passed on %d", w.links.calls, len(w.next.accepted))
	}
	// A network without a bot: the command still runs, unanswered.
	w.c.AddNetwork("libera", "irc", struct{}{})
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay on"))
	if !w.links.Relayed(roomA) || len(w.next.accepted) != 0 {
		t.Error("a command from a network without a bot was not run, or was bridged")
	}
}

func TestCommandGarbage(t *testing.T) {
	w := newCmdWorld(t)
	for _, c := range []struct{ text, want string }{
		{"!sb", "Switchboard admins' commands"},
		{"!sb link", `Usage: "!sb link <network:room>"`},
		{"!sb link nocolon", `Bad room address "nocolon": want network:room`},
		{"!sb link :#x", "empty network name"},
		{"!sb link nowhere:#x", `No network is named "nowhere" (networks: devices, libera, matrix)`},
		{"!sb link libera:#b libera:#c", `Usage: "!sb link <network:room>"`},
		{"!sb unlink", `Usage: "!sb unlink <network:room>"`},
		{"!sb link libera:#b\r\nQUIT", "without control characters"},
		{"!sb link libera:#b\x00", "without control characters"},
		{"!sb\nlink libera:#b", "without control characters"},
		{"!sb link libera:#b\x01ACTION", "without control characters"},
		{"!sb frobnicate", `Unknown command "frobnicate"`},
		{"!sb status now", `Usage: "!sb status"`},
	} {
		w.say(t, roomMsg(roomA, ircAdmin, c.text))
		got := w.replies("libera")
		wantReply(t, got, c.want)
		for _, line := range got {
			if strings.ContainsAny(line, "\r\n\x00\x01") {
				t.Errorf("%q: reply line has control characters: %q", c.text, line)
			}
		}
	}
	if len(w.links.calls) != 0 || len(w.next.accepted) != 0 {
		t.Errorf("garbage changed something: calls %q, passed on %d", w.links.calls, len(w.next.accepted))
	}
}

func TestCommandAdminsReload(t *testing.T) {
	w := newCmdWorld(t)
	w.c.Reload(&config.Config{Admins: []string{"matrix:@new:hs"}})
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay on"))
	wantReply(t, w.replies("libera"), "only Switchboard admins")
	w.say(t, roomMsg(roomX, bridge.Sender{Network: "matrix", ID: "@new:hs"}, "!sb relay on"))
	wantReply(t, w.replies("matrix"), "Relay mode on for matrix:!x:hs")
	// A list that does not parse keeps the one in force.
	w.c.Reload(&config.Config{Admins: []string{"nocolon"}})
	w.say(t, roomMsg(roomX, bridge.Sender{Network: "matrix", ID: "@new:hs"}, "!sb relay off"))
	wantReply(t, w.replies("matrix"), "Relay mode off for matrix:!x:hs")
}

// An ignored sender is neither obeyed nor answered, in a room or by
// direct message: what they say goes on to the router, which drops it.
func TestCommandsIgnoreIgnoredSenders(t *testing.T) {
	w := newCmdWorld(t)
	ig, err := mapping.NewIgnores(map[string]mapping.NetworkIgnore{"libera": {Type: "irc", Patterns: []string{"op!*@ops.example.org"}}},
		map[string][]string{"lobby": {"*!*@evil.example"}})
	if err != nil {
		t.Fatal(err)
	}
	w.c.ignore = ig
	w.say(t, directMsg(ircAdmin, "hi bot"))
	w.say(t, directMsg(ircAdmin, "!sb status"))
	w.say(t, roomMsg(roomA, ircAdmin, "!sb relay on"))
	w.say(t, roomMsg(roomA, ircUser, "!sb status")) // the link's list
	if got := w.replies("libera"); len(got) != 0 {
		t.Errorf("an ignored sender got replies: %q", got)
	}
	if len(w.links.calls) != 0 {
		t.Errorf("an ignored admin's command ran: %q", w.links.calls)
	}
	if len(w.next.accepted) != 4 {
		t.Errorf("%d events passed on to the router, want all 4", len(w.next.accepted))
	}
	// The link's list does not apply outside the link: ircUser is answered
	// by direct message.
	w.say(t, directMsg(ircUser, "hi bot"))
	wantReply(t, w.replies("libera"), `"!sb help"`)
}
