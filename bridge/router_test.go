package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// plain is a network that can only send messages, like IRC. It records
// what each room received and can be told to fail.
type plain struct {
	mu    sync.Mutex
	got   map[string][]*bridge.Delivery
	fail  func(*bridge.Delivery) error
	calls int
	seen  chan struct{}
}

func newPlain() *plain {
	return &plain{got: map[string][]*bridge.Delivery{}, seen: make(chan struct{}, 1000)}
}

func (p *plain) record(d *bridge.Delivery) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != nil {
		if err := p.fail(d); err != nil {
			return "", err
		}
	}
	p.got[d.Room] = append(p.got[d.Room], d)
	p.seen <- struct{}{}
	return fmt.Sprintf("%s-%d", d.Room, len(p.got[d.Room])), nil
}

func (p *plain) Send(_ context.Context, d *bridge.Delivery) (string, error) { return p.record(d) }

func (p *plain) setFail(f func(*bridge.Delivery) error) {
	p.mu.Lock()
	p.fail = f
	p.mu.Unlock()
}

func (p *plain) room(room string) []*bridge.Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*bridge.Delivery(nil), p.got[room]...)
}

// waitRoom waits until room has received n deliveries.
func (p *plain) waitRoom(t *testing.T, room string, n int) []*bridge.Delivery {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := p.room(room); len(got) >= n {
			return got
		}
		select {
		case <-p.seen:
		case <-deadline:
			t.Fatalf("room %s got %d deliveries, want %d", room, len(p.room(room)), n)
		}
	}
}

// rich can also edit, react and reply natively, like Matrix.
type rich struct{ *plain }

func (r rich) SendEdit(_ context.Context, d *bridge.Delivery) (string, error)     { return r.record(d) }
func (r rich) SendReaction(_ context.Context, d *bridge.Delivery) (string, error) { return r.record(d) }
func (r rich) SendReply(_ context.Context, d *bridge.Delivery) (string, error)    { return r.record(d) }
func (r rich) SendDelete(_ context.Context, d *bridge.Delivery) error {
	_, err := r.record(d)
	return err
}

type fixture struct {
	store  *store.Store
	router *bridge.Router
	links  *mapping.Links
	dir    string
}

func newFixture(t testing.TB, dir string, nets map[string]bridge.MessageSender) *fixture {
	return newFixtureDSN(t, "sqlite", dir, nets)
}

func newFixtureDSN(t testing.TB, dsn, dir string, nets map[string]bridge.MessageSender) *fixture {
	t.Helper()
	return newFixtureLog(t, dsn, dir, nets, quiet)
}

// newFixtureLog is newFixtureDSN with the router logging to log.
func newFixtureLog(t testing.TB, dsn, dir string, nets map[string]bridge.MessageSender, log *slog.Logger) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	links, err := mapping.NewLinks(map[string][]bridge.RoomAddr{
		"lobby": {{Network: "irc", Room: "#lobby"}, {Network: "mqtt", Room: "chat/lobby"}, {Network: "matrix", Room: "!lobby"}},
		"ops":   {{Network: "irc", Room: "#ops"}, {Network: "mqtt", Room: "chat/ops"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := bridge.NewRouter(st, links, log)
	r.MinBackoff, r.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	for name, n := range nets {
		r.AddNetwork(name, n)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, router: r, links: links, dir: dir}
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) stop() {
	f.router.Stop()
	f.store.Close()
}

// waitDepth waits for the outbox to hold n entries: a delivery is removed
// just after the network took it.
func (f *fixture) waitDepth(t *testing.T, n int) {
	t.Helper()
	var got int
	for range 200 {
		got, _ = f.store.OutboxDepth(context.Background())
		if got == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("outbox depth %d, want %d", got, n)
}

func msg(network, room, sender, remoteID, text string) *bridge.Message {
	return &bridge.Message{
		Header: bridge.Header{
			Origin: bridge.Origin{Network: network, Room: room, RemoteID: remoteID},
			Sender: bridge.Sender{Network: network, ID: sender, Name: sender},
		},
		Text: text,
	}
}

func accept(t *testing.T, r *bridge.Router, ev bridge.Event) {
	t.Helper()
	if err := r.Accept(context.Background(), ev); err != nil {
		t.Fatalf("accept: %v", err)
	}
}

func texts(ds []*bridge.Delivery) []string {
	var out []string
	for _, d := range ds {
		if m, ok := d.Event.(*bridge.Message); ok {
			out = append(out, m.Text)
		} else {
			out = append(out, string(d.Event.Kind()))
		}
	}
	return out
}

func TestEveryOtherRoomOfTheLinkOnly(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	accept(t, f.router, msg("irc", "#lobby", "alice", "m1", "hello lobby"))
	accept(t, f.router, msg("mqtt", "chat/ops", "dev", "", "hello ops"))

	if got := texts(mqtt.waitRoom(t, "chat/lobby", 1)); got[0] != "hello lobby" {
		t.Errorf("mqtt lobby got %q", got)
	}
	if got := texts(matrix.waitRoom(t, "!lobby", 1)); got[0] != "hello lobby" {
		t.Errorf("matrix lobby got %q", got)
	}
	if got := texts(irc.waitRoom(t, "#ops", 1)); got[0] != "hello ops" {
		t.Errorf("irc ops got %q", got)
	}
	time.Sleep(50 * time.Millisecond)
	if got := irc.room("#lobby"); len(got) != 0 {
		t.Errorf("the origin room got its own message back: %q", texts(got))
	}
	if got := mqtt.room("chat/ops"); len(got) != 0 {
		t.Errorf("the origin room got its own message back: %q", texts(got))
	}
	if got := matrix.room("#ops"); len(got) != 0 {
		t.Errorf("a room outside the link got %q", texts(got))
	}
}

func TestUnlinkedRoomAndDuplicatesDropped(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	accept(t, f.router, msg("irc", "#elsewhere", "alice", "x1", "not linked"))
	accept(t, f.router, msg("irc", "#ops", "alice", "dup", "once"))
	accept(t, f.router, msg("irc", "#ops", "alice", "dup", "once"))
	accept(t, f.router, msg("irc", "#ops", "alice", "", "marker"))
	got := texts(mqtt.waitRoom(t, "chat/ops", 2))
	if strings.Join(got, "|") != "once|marker" {
		t.Errorf("got %q, want the duplicate dropped", got)
	}
	f.waitDepth(t, 0)
}

func TestOrderKeptThroughFailures(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	failures := 0
	mqtt.setFail(func(d *bridge.Delivery) error {
		if failures < 5 {
			failures++
			return errors.New("broker away")
		}
		return nil
	})
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	var want []string
	for i := range 50 {
		text := fmt.Sprintf("line %02d", i)
		want = append(want, text)
		accept(t, f.router, msg("irc", "#ops", "alice", "", text))
	}
	got := texts(mqtt.waitRoom(t, "chat/ops", 50))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("order changed:\n got %q\nwant %q", got, want)
	}
}

func TestDownNetworkBlocksOnlyItself(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	matrix.setFail(func(*bridge.Delivery) error { return errors.New("homeserver down") })
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	for i := range 10 {
		accept(t, f.router, msg("irc", "#lobby", "alice", "", fmt.Sprintf("m%d", i)))
	}
	mqtt.waitRoom(t, "chat/lobby", 10)
	f.waitDepth(t, 10) // the matrix deliveries wait
	matrix.setFail(nil)
	f.router.Online("matrix")
	matrix.waitRoom(t, "!lobby", 10)
}

// A delivery that failed only because its network is not connected (as
// at start, before the adapter has connected) is retried like any other
// but logged at debug level, for the adapter reports its connection
// itself; any other failure is a warning.
func TestNotConnectedIsNoWarning(t *testing.T) {
	var logs bytes.Buffer // written under the handler's lock, read after Stop
	irc, mqtt := newPlain(), newPlain()
	down := fmt.Errorf("mqtt: %w to the broker", bridge.ErrNotConnected)
	failures := 0
	mqtt.setFail(func(d *bridge.Delivery) error {
		if failures++; failures <= 3 {
			return down
		} else if failures == 4 {
			return errors.New("broker refused the publish")
		}
		return nil
	})
	f := newFixtureLog(t, "sqlite", t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	accept(t, f.router, msg("irc", "#ops", "alice", "", "hello"))
	mqtt.waitRoom(t, "chat/ops", 1)
	f.stop()
	if n := strings.Count(logs.String(), "delivery failed, will retry"); n != 1 || !strings.Contains(logs.String(), "broker refused") {
		t.Errorf("%d warnings of retries, want 1, of the refusal only:\n%s", n, logs.String())
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	irc, mqtt := newPlain(), newPlain()
	mqtt.setFail(func(*bridge.Delivery) error { return errors.New("down") })
	f := newFixture(t, dir, map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	for i := range 5 {
		accept(t, f.router, msg("irc", "#ops", "alice", "", fmt.Sprintf("kept %d", i)))
	}
	f.stop()

	mqtt2 := newPlain()
	newFixture(t, dir, map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": mqtt2})
	got := texts(mqtt2.waitRoom(t, "chat/ops", 5))
	if strings.Join(got, ",") != "kept 0,kept 1,kept 2,kept 3,kept 4" {
		t.Errorf("after restart got %q", got)
	}
}

func TestFallbacksAndNativeCapabilities(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	orig := msg("matrix", "!lobby", "@bob:hs", "$orig", "the first words of a rather long message that goes on")
	accept(t, f.router, orig)
	irc.waitRoom(t, "#lobby", 1)
	matrix.waitRoom(t, "!lobby", 0)

	edit := &bridge.Edit{Header: msg("matrix", "!lobby", "@bob:hs", "$edit", "").Header, Target: bridge.Ref{Remote: "$orig"}, Text: "fixed"}
	accept(t, f.router, edit)
	// Senders are served fairly, not in arrival order: wait for bob's edit
	// before carol reacts so the order below is the one users saw.
	irc.waitRoom(t, "#lobby", 2)
	react := &bridge.Reaction{Header: msg("matrix", "!lobby", "@carol:hs", "$react", "").Header, Target: bridge.Ref{Remote: "$orig"}, Key: "👍"}
	accept(t, f.router, react)
	reply := msg("matrix", "!lobby", "@carol:hs", "$reply", "I agree")
	reply.ReplyTo = bridge.Ref{Remote: "$orig"}
	accept(t, f.router, reply)
	del := &bridge.Delete{Header: msg("matrix", "!lobby", "@bob:hs", "$del", "").Header, Target: bridge.Ref{Remote: "$orig"}}
	accept(t, f.router, del)

	got := irc.waitRoom(t, "#lobby", 4)
	want := []string{
		"the first words of a rather long message that goes on",
		"* fixed",
		`reacted 👍 to "the first words of a rather long…"`,
		"> @bob:hs: the first words of a rather long…\nI agree",
	}
	if strings.Join(texts(got), "|") != strings.Join(want, "|") {
		t.Errorf("IRC fallbacks:\n got %q\nwant %q", texts(got), want)
	}
	if m := got[2].Event.(*bridge.Message); !m.Emote {
		t.Errorf("reaction fallback is not an action line")
	}

	// IRC gave the original the id "#lobby-1"; MQTT's native-capable
	// sibling Matrix is the origin, so check a native target from IRC.
	ircMsg := msg("irc", "#lobby", "dave", "irc-1", "from irc")
	accept(t, f.router, ircMsg)
	m := matrix.waitRoom(t, "!lobby", 1)
	ircEdit := &bridge.Edit{Header: msg("irc", "#lobby", "dave", "irc-2", "").Header, Target: bridge.Ref{Remote: "irc-1"}, Text: "from irc, fixed"}
	accept(t, f.router, ircEdit)
	m = matrix.waitRoom(t, "!lobby", 2)
	e, ok := m[1].Event.(*bridge.Edit)
	if !ok || e.Text != "from irc, fixed" || m[1].Target != "!lobby-1" {
		t.Errorf("native edit = %T %+v target %q, want an edit of !lobby-1", m[1].Event, m[1].Event, m[1].Target)
	}
}

func TestChangesToSomeoneElsesMessageRefused(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	accept(t, f.router, msg("matrix", "!lobby", "@alice:hs", "$a", "alice's words"))
	forged := &bridge.Edit{Header: msg("matrix", "!lobby", "@mallory:hs", "$f", "").Header, Target: bridge.Ref{Remote: "$a"}, Text: "mallory's words"}
	accept(t, f.router, forged)
	gone := &bridge.Delete{Header: msg("matrix", "!lobby", "@mallory:hs", "$g", "").Header, Target: bridge.Ref{Remote: "$a"}}
	accept(t, f.router, gone)
	accept(t, f.router, msg("matrix", "!lobby", "@alice:hs", "$b", "marker"))
	got := texts(irc.waitRoom(t, "#lobby", 2))
	if strings.Join(got, "|") != "alice's words|marker" {
		t.Errorf("IRC got %q; the forged edit must not pass", got)
	}
}

// A moderator's delete of someone else's message goes through, flagged;
// an author's delete loses the flag; anyone else's stays refused.
func TestModeratorDeletes(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	accept(t, f.router, msg("irc", "#lobby", "alice", "a", "alice's words"))
	accept(t, f.router, msg("irc", "#lobby", "mod", "m", "the moderator's words"))
	// The two senders' lanes deliver in either order: each message's
	// remote id is where it landed.
	remote := map[string]string{}
	for i, d := range matrix.waitRoom(t, "!lobby", 2) {
		remote[d.Event.Head().Sender.ID] = fmt.Sprintf("!lobby-%d", i+1)
	}

	refused := &bridge.Delete{Header: msg("irc", "#lobby", "mallory", "x1", "").Header, Target: bridge.Ref{Remote: "a"}}
	accept(t, f.router, refused)
	moderated := &bridge.Delete{Header: msg("irc", "#lobby", "mod", "x2", "").Header, Target: bridge.Ref{Remote: "a"}, Moderator: true}
	accept(t, f.router, moderated)
	own := &bridge.Delete{Header: msg("irc", "#lobby", "mod", "x3", "").Header, Target: bridge.Ref{Remote: "m"}, Moderator: true}
	accept(t, f.router, own)

	// Both deletes are mod's, in one lane: in order.
	got := matrix.waitRoom(t, "!lobby", 4)[2:]
	for i, want := range []struct {
		target    string
		moderator bool
	}{{remote["alice"], true}, {remote["mod"], false}} {
		d, ok := got[i].Event.(*bridge.Delete)
		if !ok || got[i].Target != want.target || d.Moderator != want.moderator || d.Sender.ID != "mod" {
			t.Errorf("delivery %d: %T %+v of %q, want mod's delete of %s with Moderator %v", i, got[i].Event, got[i].Event, got[i].Target, want.target, want.moderator)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(matrix.room("!lobby")); n != 4 {
		t.Errorf("matrix got %d deliveries, want 4: mallory's delete must not pass", n)
	}
}

func TestPermanentFailureDoesNotBlock(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	mqtt.setFail(func(d *bridge.Delivery) error {
		if d.Event.(*bridge.Message).Text == "poison" {
			return bridge.Permanent(errors.New("refused"))
		}
		return nil
	})
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	accept(t, f.router, msg("irc", "#ops", "alice", "", "poison"))
	accept(t, f.router, msg("irc", "#ops", "alice", "", "fine"))
	if got := texts(mqtt.waitRoom(t, "chat/ops", 1)); got[0] != "fine" {
		t.Errorf("got %q", got)
	}
}

func TestExcerpt(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short", "short"},
		{"first line\nsecond", "first line…"},
		{"the first words of a rather long message that goes on", "the first words of a rather long…"},
		{strings.Repeat("é", 50), strings.Repeat("é", 40) + "…"},
	} {
		if got := bridge.Excerpt(c.in, 40); got != c.want {
			t.Errorf("Excerpt(%q) = %q, want %q", c.in, got, c.want)
		}
		// Retention keeps the excerpt as a message's text: a reply quotes
		// it unchanged.
		if got := bridge.Excerpt(c.want, 40); got != c.want {
			t.Errorf("Excerpt(%q) = %q, want it unchanged", c.want, got)
		}
	}
}

func TestCleanText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain ünïcode\ttab", "plain ünïcode\ttab"},
		{"a\r\nQUIT :x\x00b", "a\nQUIT :xb"},
		{"cr\ronly", "cr\nonly"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"bell\x07 del\x7f", "bell del"},
	} {
		if got := bridge.CleanText(c.in); got != c.want {
			t.Errorf("CleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A backlog larger than what queues keep in memory is read back from the
// store, in order, once; afterwards hand-over in memory resumes.
func TestLargeBacklogDeliveredInOrderOnce(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	mqtt.setFail(func(*bridge.Delivery) error { return errors.New("down") })
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	var want []string
	say := func(i int) {
		text := fmt.Sprintf("backlog %04d", i)
		want = append(want, text)
		accept(t, f.router, msg("irc", "#ops", "alice", "", text))
	}
	for i := range 700 {
		say(i)
	}
	mqtt.setFail(nil)
	f.router.Online("mqtt")
	mqtt.waitRoom(t, "chat/ops", 700)
	for i := 700; i < 720; i++ {
		say(i)
	}
	got := texts(mqtt.waitRoom(t, "chat/ops", 720))
	time.Sleep(50 * time.Millisecond)
	got = texts(mqtt.room("chat/ops"))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %d deliveries, want %d in order; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	f.waitDepth(t, 0)
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// irc implements direct messages; mqtt does not.
type directPlain struct{ *plain }

func (directPlain) DirectMessages() {}

func TestDirectMessages(t *testing.T) {
	irc, mqtt := directPlain{newPlain()}, newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": rich{newPlain()}})
	alice := bridge.Sender{Network: "matrix", ID: "@alice:hs", Name: "alice"}
	bob := bridge.Sender{Network: "irc", ID: "bob", Name: "bob"}
	dm := msg("matrix", "", alice.ID, "$dm1", "psst, bob")
	dm.To = &bob
	accept(t, f.router, dm)
	got := irc.waitRoom(t, "", 1)
	if m := got[0].Event.(*bridge.Message); m.Text != "psst, bob" || m.To == nil || m.To.ID != "bob" || got[0].Link != bridge.DirectLink {
		t.Errorf("direct delivery %+v of %+v", got[0], got[0].Event)
	}
	if n := len(mqtt.room("chat/lobby")) + len(irc.room("#lobby")); n != 0 {
		t.Errorf("a direct message reached %d linked rooms", n)
	}
	// bob answers; it goes back to alice on Matrix, who has no direct
	// messages here: it fails for good instead of blocking.
	answer := msg("irc", "", "bob", "irc-dm", "hi alice")
	answer.To = &alice
	accept(t, f.router, answer)
	f.waitDepth(t, 0)
}

// botDirect also speaks as the bot, recording what it says to whom.
type botDirect struct {
	directPlain
	said chan string
}

func (b botDirect) SendAsBot(_ context.Context, room, user, text string) error {
	b.said <- room + "|" + user + "|" + text
	return nil
}

// The author of a direct message that fails for good hears of it from the
// bot of their own network.
func TestFailedDirectMessageIsReportedToItsSender(t *testing.T) {
	irc := botDirect{directPlain{newPlain()}, make(chan string, 4)}
	mqtt := newPlain()
	mqtt.setFail(func(*bridge.Delivery) error { return bridge.Permanent(errors.New("refused")) })
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": rich{newPlain()}})
	told := func(to bridge.Sender, remote, want string) {
		t.Helper()
		answer := msg("irc", "", "bob", remote, "hi")
		answer.To = &to
		accept(t, f.router, answer)
		select {
		case got := <-irc.said:
			if want = "|bob|Your message to " + want + " (matrix) was not delivered: matrix has no direct messages."; got != want {
				t.Errorf("the bot told %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the sender was never told")
		}
	}
	told(bridge.Sender{Network: "matrix", ID: "@alice:hs", Name: "alice"}, "irc-dm", "alice")
	// The recipient's name cannot rewrite the notice.
	told(bridge.Sender{Network: "matrix", ID: "@m:hs", Name: "carol (irc) was delivered.\n\u202Eyes"}, "irc-dm-2", "carol _irc_ was delivered. yes")
	// A message to a room that fails for good is in the failed list, not
	// announced to its author.
	accept(t, f.router, msg("irc", "#lobby", "bob", "", "to the room"))
	f.waitDepth(t, 0)
	select {
	case got := <-irc.said:
		t.Errorf("the bot also said %q", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// Links replaced at runtime take effect with the next event, and a room in
// relay mode gets its deliveries marked for the bot.
func TestRuntimeLinksAndRelayRooms(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	err := f.links.Replace(map[string][]bridge.RoomAddr{
		"lobby": {{Network: "irc", Room: "#lobby"}, {Network: "mqtt", Room: "chat/lobby"}},
		"fresh": {{Network: "irc", Room: "#fresh"}, {Network: "mqtt", Room: "chat/fresh"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.links.SetRelayed([]bridge.RoomAddr{{Network: "irc", Room: "#fresh"}})
	accept(t, f.router, msg("mqtt", "chat/fresh", "dev", "", "on the new link"))
	accept(t, f.router, msg("mqtt", "chat/lobby", "dev", "", "on the old link"))
	accept(t, f.router, msg("mqtt", "chat/ops", "dev", "", "on a link that is gone"))
	if got := irc.waitRoom(t, "#fresh", 1); got[0].Event.(*bridge.Message).Text != "on the new link" || !got[0].Relay {
		t.Errorf("#fresh got %q, relay %v", texts(got), got[0].Relay)
	}
	if got := irc.waitRoom(t, "#lobby", 1); texts(got)[0] != "on the old link" || got[0].Relay {
		t.Errorf("#lobby got %q, relay %v", texts(got), got[0].Relay)
	}
	time.Sleep(50 * time.Millisecond)
	if got := irc.room("#ops"); len(got) != 0 {
		t.Errorf("a room of a removed link got %q", texts(got))
	}
}

// Deliveries still waiting for a room that is then taken out of its link
// fail for good instead of bringing the adapter back into the room.
func TestWaitingDeliveriesToUnlinkedRoomFail(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	irc.setFail(func(*bridge.Delivery) error { return errors.New("server down") })
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	accept(t, f.router, msg("mqtt", "chat/ops", "dev", "", "waits"))
	f.waitDepth(t, 1)
	err := f.links.Replace(map[string][]bridge.RoomAddr{"ops": {{Network: "mqtt", Room: "chat/ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The room's server stays down: only failing for good, with the
	// link gone, takes the entry out of the outbox. (Letting the server
	// up here would race an attempt that checked the link before it was
	// replaced.)
	f.waitDepth(t, 0)
	failed, err := f.store.FailedDeliveries(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Reason, "no longer linked") {
		t.Errorf("failed list %+v, want the delivery, no longer linked", failed)
	}
	if got := irc.room("#ops"); len(got) != 0 {
		t.Errorf("a room taken out of its link got %q", texts(got))
	}
}

// In cluster mode an entry may be committed (by another instance) for a
// room that this router's links do not have yet: Relink brings them up
// to date before the delivery would fail, and it goes out. A room that
// Relink leaves out of every link still fails for good.
func TestRelinkBeforeFailingUnlinkedRoom(t *testing.T) {
	irc, mqtt := newPlain(), newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"mqtt": mqtt})
	all := map[string][]bridge.RoomAddr{
		"lobby": {{Network: "irc", Room: "#lobby"}, {Network: "mqtt", Room: "chat/lobby"}, {Network: "matrix", Room: "!lobby"}},
		"ops":   {{Network: "irc", Room: "#ops"}, {Network: "mqtt", Room: "chat/ops"}},
	}
	unlinked := map[string][]bridge.RoomAddr{"lobby": all["lobby"], "ops": {{Network: "mqtt", Room: "chat/ops"}}}
	var relinks atomic.Int32
	var restore atomic.Bool
	restore.Store(true)
	f.router.Relink = func(context.Context) {
		relinks.Add(1)
		if restore.Load() {
			if err := f.links.Replace(all); err != nil {
				t.Error(err)
			}
		}
	}
	// Committed for #ops while IRC is not delivered here, then the links
	// lose #ops: as if another instance committed it for a link that
	// this one has not read yet.
	accept(t, f.router, msg("mqtt", "chat/ops", "dev", "", "linked elsewhere"))
	f.waitDepth(t, 1)
	if err := f.links.Replace(unlinked); err != nil {
		t.Fatal(err)
	}
	f.router.AddNetwork("irc", irc)
	if got := texts(irc.waitRoom(t, "#ops", 1)); got[0] != "linked elsewhere" {
		t.Errorf("#ops got %q", got)
	}
	if n := relinks.Load(); n != 1 {
		t.Errorf("Relink called %d times, want 1", n)
	}

	irc.setFail(func(*bridge.Delivery) error { return errors.New("server down") })
	accept(t, f.router, msg("mqtt", "chat/ops", "dev", "", "unlinked everywhere"))
	f.waitDepth(t, 1)
	restore.Store(false)
	if err := f.links.Replace(unlinked); err != nil {
		t.Fatal(err)
	}
	if failed := settledFailed(t, f); len(failed) != 1 || !strings.Contains(failed[0].Reason, "no longer linked") {
		t.Errorf("failed list %+v, want the second delivery, no longer linked", failed)
	}
}
