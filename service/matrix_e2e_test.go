package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/avatars"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/matrix"
)

// These tests link a room on a real Dendrite with an IRC channel, an MQTT
// topic root and an XMPP MUC, and assert what people in each see.

type mworld struct {
	*xworld
	hs       *testenv.MatrixServer
	mx       matrix.Config
	httpAddr string
	alice    *testenv.MatrixClient
	roomID   id.RoomID
	// people is the YAML of a people section (indented under
	// "people:"), or "".
	people string
	// mxKeys are more keys of the Matrix network, as lines indented by
	// four, or "".
	mxKeys string
}

func newMWorld(t *testing.T) *mworld { return newMWorldOn(t, newXWorld(t)) }

// newMWorldOn is newMWorld around a given IRC, MQTT and XMPP world.
func newMWorldOn(t *testing.T, xw *xworld) *mworld { return newMWorldPeople(t, xw, "") }

// newMWorldPeople is newMWorldOn whose config has a people section
// (people, indented under "people:"); Dendrite reads the registration
// `switchboard matrix-registration` writes for that config, which names
// the people it double-puppets.
func newMWorldPeople(t *testing.T, xw *xworld, people string) *mworld {
	return newMWorldWith(t, xw, people, "")
}

// newMWorldWith is newMWorldPeople whose Matrix network has mxKeys too
// (lines indented by four), in the registration as well.
func newMWorldWith(t *testing.T, xw *xworld, people, mxKeys string) *mworld {
	w := &mworld{xworld: xw, httpAddr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), people: people, mxKeys: mxKeys}
	w.mx = matrix.Config{
		Homeserver:     "http://placeholder",
		Domain:         "localhost",
		ASToken:        "as-token-e2e-0123456789abcdef",
		HSToken:        "hs-token-e2e-0123456789abcdef",
		Bot:            "switchboard",
		GhostLocalpart: "sb_{network}_{id}",
		ID:             "switchboard",
		URL:            "http://" + w.httpAddr,
	}
	// The registration needs no homeserver, nor the room yet.
	reg, err := matrix.RegistrationYAML(w.config(t, "!placeholder:localhost"), "mx")
	if err != nil {
		t.Fatal(err)
	}
	w.hs = testenv.Dendrite(t, reg)
	w.mx.Homeserver = w.hs.URL
	w.alice = w.hs.Client(t, "alice")
	w.roomID = w.alice.NewRoom(true, "")
	return w
}

// config links #room, sb/room, the MUC and the Matrix room (or the
// given Matrix room address).
func (w *mworld) config(t *testing.T, matrixRoom string) *config.Config {
	t.Helper()
	if matrixRoom == "" {
		matrixRoom = string(w.roomID)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q }
networks:
  # rate 0: the restart test streams 20 lines from one person.
  libera: { type: irc, server: %q, nick: switchboard, flood: { burst: 50, interval: 10ms }, rate: { per_second: 0 }, reconnect_max: 2s }
  devices: { type: mqtt, broker: %q, client_id: switchboard-e2e }
  # client_server: where people's own sessions log in.
  jabber: { type: xmpp, server: %q, component: { domain: %q, secret: %q }, client_server: %q, insecure_plaintext: true }
  mx:
    type: matrix
    homeserver: %q
    domain: %q
    as_token: %q
    hs_token: %q
    bot: %q
    ghost_localpart: %q
    url: %q
%s
links:
  lobby: [ "libera:%s", "devices:%s", "jabber:%s", "mx:%s" ]
%s`, w.dir, w.httpAddr, w.irc.Addr, w.mqtt.URL, w.xmpp.ComponentAddr, w.xmpp.Component, w.xmpp.ComponentSecret, w.xmpp.C2SAddr,
		w.mx.Homeserver, w.mx.Domain, w.mx.ASToken, w.mx.HSToken, w.mx.Bot, w.mx.GhostLocalpart, w.mx.URL, w.mxKeys,
		room, root, w.room, matrixRoom, peopleSection(w.people))))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (w *mworld) waitMatrix(t *testing.T, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, _, err := w.alice.WaitFor(ctx, 0, match)
	if err != nil {
		t.Fatalf("alice never saw %s: %v", what, err)
	}
	return ev
}

func messageText(ev *event.Event) (*event.MessageEventContent, bool) {
	if ev.Type != event.EventMessage {
		return nil, false
	}
	c, ok := ev.Content.Parsed.(*event.MessageEventContent)
	if !ok {
		if err := ev.Content.ParseRaw(ev.Type); err == nil {
			c, ok = ev.Content.Parsed.(*event.MessageEventContent)
		}
	}
	return c, ok
}

// Test 1: a Matrix user reaches IRC, MQTT and XMPP from her puppets; an
// IRC user appears in Matrix as a ghost named after his nick.
func TestMatrixRoomLinkedWithIRCMQTTAndXMPP(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	sub := w.mqtt.Subscribe(t, root+"/out/mx/#", 1)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	w.alice.Text(w.roomID, "hi from matrix")
	bob.WaitText(patience, room, "alice[mx]", "hi from matrix")
	carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "hi from matrix"))
	if ev := nextEvent(t, sub, "message"); ev.Text != "hi from matrix" || ev.Sender.Name != "alice" {
		t.Errorf("MQTT event %+v", ev)
	}

	bob.Say(room, "hello matrix")
	ev := w.waitMatrix(t, "bob's message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "hello matrix"
	})
	if !strings.HasPrefix(ev.Sender.Localpart(), "sb_libera_") {
		t.Errorf("sender %s is not a libera ghost", ev.Sender)
	}
	if name := w.alice.DisplayName(ev.Sender); name != "bob (libera)" {
		t.Errorf("ghost display name %q, want bob (libera)", name)
	}
}

// Test 2: edit, reply, reaction and redaction from Matrix: fallbacks on
// IRC, structured events on MQTT, native forms on XMPP.
func TestMatrixRelationsReachEveryNetwork(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	sub := w.mqtt.Subscribe(t, root+"/out/mx/#", 1)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	orig := w.alice.Text(w.roomID, "lunch at noon")
	bob.WaitText(patience, room, "alice[mx]", "lunch at noon")
	first := carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "lunch at noon"))
	origEv := nextEvent(t, sub, "message")

	w.alice.Edit(w.roomID, orig, "lunch at one")
	bob.WaitText(patience, room, "alice[mx]", "* lunch at one")
	if ev := nextEvent(t, sub, "edit"); ev.EditOf != origEv.ID || ev.Text != "lunch at one" {
		t.Errorf("MQTT edit %+v", ev)
	}
	corr := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Body() == "lunch at one" && s.Child("urn:xmpp:message-correct:0", "replace") != nil
	})
	if got := corr.Child("urn:xmpp:message-correct:0", "replace").AttrValue("id"); got != first.ID() {
		t.Errorf("XMPP correction replaces %q, want %q", got, first.ID())
	}

	w.alice.Reply(w.roomID, orig, "or later")
	bob.WaitText(patience, room, "alice[mx]", "or later")
	if ev := nextEvent(t, sub, "message"); ev.ReplyTo != origEv.ID || ev.Text != "or later" {
		t.Errorf("MQTT reply %+v", ev)
	}
	carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return strings.HasSuffix(s.Body(), "or later") && s.Child("urn:xmpp:reply:0", "reply") != nil
	})

	w.alice.React(w.roomID, orig, "👍")
	bob.WaitText(patience, room, "alice[mx]", "\x01ACTION reacted 👍 to \"lunch at noon\"\x01")
	if ev := nextEvent(t, sub, "reaction"); ev.Key != "👍" || ev.Target != origEv.ID {
		t.Errorf("MQTT reaction %+v", ev)
	}
	carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		r := s.Child("urn:xmpp:reactions:0", "reactions")
		return r != nil && r.Child("", "reaction").TextOrEmpty() == "👍"
	})

	// Dendrite v0.15.2 never pushes redactions to appservices, so the
	// redaction arrives as Synapse pushes it: in a transaction to the
	// appservice endpoint.
	code := w.pushTransaction(t, "redact-1", fmt.Sprintf(`{"type":"m.room.redaction","room_id":%q,"sender":%q,
		"event_id":"$redaction-1","redacts":%q,"origin_server_ts":%d,"content":{"redacts":%q}}`,
		w.roomID, w.alice.UserID, orig, time.Now().UnixMilli(), orig))
	if code != http.StatusOK {
		t.Fatalf("transaction: %d", code)
	}
	if ev := nextEvent(t, sub, "delete"); ev.Target != origEv.ID {
		t.Errorf("MQTT delete %+v, want the deletion of %s", ev, origEv.ID)
	}
	retraction := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Child("urn:xmpp:message-retract:1", "retract") != nil
	})
	if got := retraction.Child("urn:xmpp:message-retract:1", "retract").AttrValue("id"); got != first.StanzaID(w.room.String()) {
		t.Errorf("XMPP retraction of %q, want the room's id %q", got, first.StanzaID(w.room.String()))
	}
}

// pushTransaction sends the appservice a transaction of events as the
// homeserver would, and returns the HTTP status.
func (w *mworld) pushTransaction(t *testing.T, txnID string, events ...string) int {
	t.Helper()
	return w.pushTransactionAs(t, w.mx.HSToken, txnID, events...)
}

func (w *mworld) pushTransactionAs(t *testing.T, token, txnID string, events ...string) int {
	t.Helper()
	return w.pushTransactionBody(t, token, txnID, `{"events":[`+strings.Join(events, ",")+`]}`)
}

// pushTransactionBody sends the appservice a transaction with this JSON
// body (ephemeral events too, which Dendrite never pushes), and returns
// the HTTP status.
func (w *mworld) pushTransactionBody(t *testing.T, token, txnID, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+w.httpAddr+"/_matrix/app/v1/transactions/"+txnID, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Test 3: formatting both ways.
func TestMatrixFormatting(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	bob := w.human(t, "bob")
	w.alice.HTML(w.roomID, "bold move", "<b>bold</b> move")
	bob.WaitText(patience, room, "alice[mx]", "\x02bold\x0f move")
	w.alice.Text(w.roomID, "line one\nline two")
	bob.WaitText(patience, room, "alice[mx]", "line two")
	if got := messages(bob, "alice[mx]"); !slices.Equal(got[len(got)-2:], []string{"line one", "line two"}) {
		t.Errorf("two-line message arrived as %q", got)
	}

	bob.Say(room, "<i>not html</i> & <script>x</script>")
	ev := w.waitMatrix(t, "bob's markup", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && strings.Contains(c.Body, "not html")
	})
	c, _ := messageText(ev)
	if c.Body != "<i>not html</i> & <script>x</script>" {
		t.Errorf("body %q", c.Body)
	}
	if strings.Contains(c.FormattedBody, "<i>") || strings.Contains(c.FormattedBody, "<script") {
		t.Errorf("IRC text became markup in Matrix: %q", c.FormattedBody)
	}

	w.publish(t, "sensor-1", `<b>device</b> <img src=x onerror=alert(1)>`)
	ev = w.waitMatrix(t, "the device's markup", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && strings.Contains(c.Body, "device")
	})
	c, _ = messageText(ev)
	if c.Body != `<b>device</b> <img src=x onerror=alert(1)>` {
		t.Errorf("body %q", c.Body)
	}
	if strings.Contains(c.FormattedBody, "<b>") || strings.Contains(c.FormattedBody, "<img") {
		t.Errorf("MQTT text became markup in Matrix: %q", c.FormattedBody)
	}
}

// Test 4: a wrong hs_token is refused and changes nothing; a transaction
// replayed after a restart bridges nothing twice.
func TestMatrixTokenAndReplayedTransaction(t *testing.T) {
	w := newMWorld(t)
	cfg := w.config(t, "")
	stop := runSwitchboard(t, cfg)
	bob := w.human(t, "bob")
	message := fmt.Sprintf(`{"type":"m.room.message","room_id":%q,"sender":%q,"event_id":"$replayed-1",
		"origin_server_ts":%d,"content":{"msgtype":"m.text","body":"sent once"}}`, w.roomID, w.alice.UserID, time.Now().UnixMilli())
	put := func(token string) int { return w.pushTransactionAs(t, token, "e2e-txn-1", message) }
	if code := put("wrong-token"); code != http.StatusForbidden {
		t.Errorf("wrong hs_token: %d, want 403", code)
	}
	if code := put(w.mx.HSToken); code != http.StatusOK {
		t.Fatalf("transaction: %d", code)
	}
	bob.WaitText(patience, room, "alice[mx]", "sent once")
	stop()
	runSwitchboard(t, cfg)
	if code := put(w.mx.HSToken); code != http.StatusOK {
		t.Fatalf("replayed transaction: %d", code)
	}
	w.alice.Text(w.roomID, "marker")
	bob.WaitText(patience, room, "alice[mx]", "marker")
	if got := messages(bob, "alice[mx]"); !slices.Equal(got, []string{"sent once", "marker"}) {
		t.Errorf("bob saw %q; the wrong token or the replay bridged something", got)
	}
}

// Test 5: Dendrite restarts while IRC keeps talking; every message
// reaches Matrix once, in order.
func TestMatrixServerRestartLosesAndRepeatsNothing(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	bob := w.human(t, "bob")
	const n = 20
	say := func(i int) { bob.Say(room, fmt.Sprintf("stream %02d", i)) }
	for i := 1; i <= 8; i++ {
		say(i)
	}
	w.waitMatrix(t, "stream 08", func(ev *event.Event) bool { c, ok := messageText(ev); return ok && c.Body == "stream 08" })
	w.hs.Process.Stop()
	for i := 9; i <= 14; i++ {
		say(i)
	}
	time.Sleep(300 * time.Millisecond)
	w.hs.Restart(t)
	for i := 15; i <= n; i++ {
		say(i)
	}
	// alice's sync picks up after the restart where it left off.
	reader := w.alice
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	var got []string
	for from := 0; len(got) < n; {
		ev, i, err := reader.WaitFor(ctx, from, func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && strings.HasPrefix(c.Body, "stream ")
		})
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		c, _ := messageText(ev)
		got = append(got, c.Body)
		from = i + 1
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("stream %02d", i+1)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Matrix has\n%q\nwant\n%q", got, want)
	}
}

// Test 6: joining the portal alias creates the room, and it is linked.
func TestMatrixPortalAlias(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, "#sb_lobby:localhost"))
	bob := w.human(t, "bob")
	portal := w.alice.Join("#sb_lobby:localhost")
	w.alice.Text(portal, "through the portal")
	bob.WaitText(patience, room, "alice[mx]", "through the portal")
	bob.Say(room, "and back")
	w.waitMatrix(t, "bob's answer", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == portal && c.Body == "and back"
	})
}

// Test 7: a file an XMPP user shares (an OOB URL, as HTTP upload sends
// it) reaches Matrix as an image on the homeserver and IRC as the link.
func TestMatrixMediaFromXMPP(t *testing.T) {
	w := newMWorld(t)
	pic := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("pixels ", 40))
	var fetches atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		rw.Header().Set("Content-Type", "image/png")
		rw.Write(pic)
	}))
	t.Cleanup(files.Close)
	cfg := w.config(t, "")
	// The file server is on 127.0.0.1, as everything in these tests.
	cfg.Networks["mx"].Section.(*matrix.Config).Media.PrivateAddresses = true
	runSwitchboard(t, cfg)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	u := files.URL + "/upload/4f2a/photo.png"
	if _, err := carol.Say(w.room, u, `<x xmlns="jabber:x:oob"><url>`+u+`</url></x>`); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "carol[jabber]", u)
	ev := w.waitMatrix(t, "carol's picture", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.MsgType == event.MsgImage
	})
	c, _ := messageText(ev)
	if c.Body != "photo.png" || c.Info == nil || c.Info.MimeType != "image/png" || c.Info.Size != len(pic) {
		t.Errorf("image event %+v", c)
	}
	if !strings.HasPrefix(ev.Sender.Localpart(), "sb_jabber_") {
		t.Errorf("sender %s is not carol's ghost", ev.Sender)
	}
	uri, err := c.URL.Parse()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	got, err := w.alice.DownloadBytes(ctx, uri)
	if err != nil || !bytes.Equal(got, pic) {
		t.Errorf("download from the homeserver: %d bytes, %v; want the %d shared", len(got), err, len(pic))
	}
	// The URL was the whole message: Matrix shows the image alone (a
	// text part would have come before it).
	for _, e := range w.alice.Events() {
		if c, ok := messageText(e); ok && strings.Contains(c.Body, u) {
			t.Errorf("Matrix shows the URL too: %q", c.Body)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("the file was fetched %d times", n)
	}
}

// Test 8: with http.public_url, a Matrix user's image reaches IRC as a
// link through Switchboard, and the link downloads the uploaded file
// (the homeserver itself serves it only to logged-in users).
func TestMatrixMediaToIRCThroughPublicURL(t *testing.T) {
	w := newMWorld(t)
	cfg := w.config(t, "")
	// The trailing slash is how people write it; links have one slash.
	cfg.HTTP.PublicURL = "http://" + w.httpAddr + "/"
	runSwitchboard(t, cfg)
	bob := w.human(t, "bob")

	pic := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat(fmt.Sprint(time.Now().UnixNano()), 20))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	up, err := w.alice.UploadBytesWithName(ctx, pic, "image/png", "sunset.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.Send(w.roomID, &event.MessageEventContent{
		MsgType: event.MsgImage, Body: "sunset.png", URL: up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: "image/png", Size: len(pic)},
	}); err != nil {
		t.Fatal(err)
	}
	prefix := "http://" + w.httpAddr + "/media/matrix/mx/"
	line := bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.EqualFold(l.Target(), room) && strings.Contains(l.Text(), prefix)
	})
	var link string
	for _, f := range strings.Fields(line.Text()) {
		if strings.HasPrefix(f, prefix) {
			link = f
		}
	}
	if !strings.HasSuffix(link, "/sunset.png") {
		t.Errorf("IRC link %q does not end in the file's name", link)
	}
	resp, body := testenv.HTTP(t, http.MethodGet, link, "", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pic) || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("GET %s: %d %q, %d bytes; want the %d uploaded", link, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(pic))
	}
}

// An XMPP user's vCard avatar becomes her Matrix ghost's avatar, under
// her usual name.
func TestMatrixGhostAvatarFromXMPPVCard(t *testing.T) {
	w := newMWorld(t)
	svc, _ := runService(t, w.config(t, ""))
	pic := testenv.PNG()
	carol := w.xmpp.Client(t, "carol", xmppUsers["carol"])
	if err := carol.PublishVCard("image/png", pic); err != nil {
		t.Fatal(err)
	}
	if err := carol.JoinWithAvatar(w.room, "carol", testenv.SHA1Hex(pic)); err != nil {
		t.Fatal(err)
	}
	// The picture is fetched in the background after her presence; what
	// she says before it is stored goes out under the old picture.
	stored := avatars.New(svc.store.State(avatars.Namespace), slog.New(slog.DiscardHandler))
	sender := bridge.Sender{Network: "jabber", ID: "carol@" + w.xmpp.Domain}
	deadline := time.Now().Add(patience)
	for {
		if h, ok, _ := stored.Avatar(t.Context(), sender); ok && h.Hash != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("carol's avatar never reached the store")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := carol.Say(w.room, "hi with my face"); err != nil {
		t.Fatal(err)
	}
	ev := w.waitMatrix(t, "carol's message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "hi with my face"
	})
	if !strings.HasPrefix(ev.Sender.Localpart(), "sb_jabber_") {
		t.Fatalf("sender %s is not carol's ghost", ev.Sender)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	res, err := w.alice.GetAvatarURL(ctx, ev.Sender)
	if err != nil || res.IsEmpty() {
		t.Fatalf("carol's ghost has no avatar: %v %v", res, err)
	}
	got, err := w.alice.DownloadBytes(ctx, res)
	if err != nil || !bytes.Equal(got, pic) {
		t.Fatalf("ghost avatar %s downloads as %d bytes (%v); want her %d-byte picture", res, len(got), err, len(pic))
	}
	if name := w.alice.DisplayName(ev.Sender); name != "carol (jabber)" {
		t.Errorf("ghost display name %q, want carol (jabber)", name)
	}
}

// A Matrix user's avatar becomes her XMPP puppet's: the puppet's vCard,
// fetched through the room, holds exactly her picture, and its presence
// advertises the picture's hash.
func TestMatrixAvatarOnXMPPPuppet(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	carol := w.person(t, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	pic := testenv.PNG()
	up, err := w.alice.UploadBytes(ctx, pic, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.alice.SetAvatarURL(ctx, up.ContentURI); err != nil {
		t.Fatal(err)
	}
	w.waitMatrix(t, "alice's membership with her avatar", func(ev *event.Event) bool {
		return ev.RoomID == w.roomID && ev.Type == event.StateMember && ev.GetStateKey() == string(w.alice.UserID) &&
			ev.Content.AsMember().AvatarURL == up.ContentURI.CUString()
	})
	w.alice.Text(w.roomID, "hi with my face")
	carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "hi with my face"))

	// The picture is downloaded in the background: the card may lag the
	// message a little.
	occupant, err := w.room.WithResource("alice (mx)")
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	deadline := time.Now().Add(patience)
	for !bytes.Equal(got, pic) {
		if time.Now().After(deadline) {
			t.Fatalf("alice's puppet vCard photo is %d bytes, never her %d-byte picture", len(got), len(pic))
		}
		time.Sleep(50 * time.Millisecond)
		st, err := carol.IQ(occupant, "get", `<vCard xmlns="vcard-temp"/>`)
		if err != nil || st.Type() != "result" {
			t.Fatalf("vCard request to %s: %v %s", occupant, err, st.Raw)
		}
		got, _ = base64.StdEncoding.DecodeString(st.Child("vcard-temp", "vCard").Child("vcard-temp", "PHOTO").Child("vcard-temp", "BINVAL").TextOrEmpty())
	}

	// By her next message at the latest, her puppet's presence says so.
	w.alice.Text(w.roomID, "see me?")
	carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "see me?"))
	if _, err := carol.WaitFor(patience, func(s testenv.XMPPStanza) bool {
		x := s.Child("vcard-temp:x:update", "x").Child("vcard-temp:x:update", "photo")
		return s.Kind() == "presence" && s.From() == occupant.String() && x.TextOrEmpty() == testenv.SHA1Hex(pic)
	}); err != nil {
		t.Fatalf("no presence of alice's puppet with her picture's hash: %v", err)
	}
}
