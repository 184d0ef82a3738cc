package xmpp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// fetchLog records whom the adapter asked for a vCard.
type fetchLog struct {
	mu  sync.Mutex
	who []string
}

func (f *fetchLog) add(j jid.JID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.who = append(f.who, j.String())
}

func (f *fetchLog) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.who)
}

// waitHandled waits until the adapter has dealt with hash for s (stored
// it or found it wrong).
func waitHandled(t *testing.T, a *Adapter, s bridge.Sender, hash string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		a.mu.Lock()
		seen, ok := a.avatarSeen[senderKey(s)]
		a.mu.Unlock()
		if ok && seen == hash {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("avatar %s of %s not dealt with after %v", hash, s.ID, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestVCardAvatars(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "avatars")
	a, _ := newTestAdapter(t, srv, setup{})
	avatars := adapterstest.NewAvatars()
	a.UseAvatars(avatars)
	var fetched fetchLog
	a.testVCardFetch = fetched.add
	rec := start(t, a, room)
	rj := jid.MustParse(room)

	// Alice publishes a photo and joins advertising its hash: the bridge
	// keeps exactly her picture, for the sender her messages come from.
	pic := testenv.PNG()
	alice := srv.Client(t, "alice", testUsers["alice"])
	if err := alice.PublishVCard("image/png", pic); err != nil {
		t.Fatal(err)
	}
	if err := alice.JoinWithAvatar(rj, "Alice", testenv.SHA1Hex(pic)); err != nil {
		t.Fatal(err)
	}
	aliceSender := bridge.Sender{Network: "jabber", ID: "alice@" + srv.Domain, Name: "Alice"}
	av := avatars.Wait(t, aliceSender, waitFor)
	if !bytes.Equal(av.Data, pic) || av.Mime != "image/png" {
		t.Fatalf("stored avatar: %s, %d bytes; want image/png, the %d bytes she published", av.Mime, len(av.Data), len(pic))
	}
	if _, err := alice.Say(rj, "hello with a face"); err != nil {
		t.Fatal(err)
	}
	// Her message comes from the sender the avatar is stored for.
	msg := waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "hello with a face" })
	if msg.Sender.Network != aliceSender.Network || msg.Sender.ID != aliceSender.ID {
		t.Fatalf("message sender %+v, avatar stored for %+v", msg.Sender, aliceSender)
	}

	// Bob advertises a hash his card's photo does not have: nothing is
	// stored for him.
	bobPic, claimed := testenv.PNG(), testenv.PNG()
	bob := srv.Client(t, "bob", testUsers["bob"])
	if err := bob.PublishVCard("image/png", bobPic); err != nil {
		t.Fatal(err)
	}
	if err := bob.JoinWithAvatar(rj, "Bob", testenv.SHA1Hex(claimed)); err != nil {
		t.Fatal(err)
	}
	bobSender := bridge.Sender{Network: "jabber", ID: "bob@" + srv.Domain}
	waitHandled(t, a, bobSender, testenv.SHA1Hex(claimed))
	if _, ok, _ := avatars.Avatar(context.Background(), bobSender); ok {
		t.Fatal("an avatar whose hash does not match the vCard photo was stored")
	}
	if !slices.Contains(fetched.list(), room+"/Bob") {
		t.Fatalf("Bob's vCard was not asked for; asked: %v", fetched.list())
	}

	// Alice changes her picture: the new one replaces the old.
	pic2 := testenv.PNG()
	if err := alice.PublishVCard("image/png", pic2); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send("presence", []string{"to", room + "/Alice"}, "", testenv.AvatarUpdate(testenv.SHA1Hex(pic2))); err != nil {
		t.Fatal(err)
	}
	waitHandled(t, a, aliceSender, testenv.SHA1Hex(pic2))
	if av, _, _ := avatars.Avatar(context.Background(), aliceSender); !bytes.Equal(av.Data, pic2) {
		t.Fatalf("after the change the stored avatar is %d bytes, not her new picture", len(av.Data))
	}

	// A puppet's presence with a photo hash (as a server adding one to
	// every presence would send it) never makes the bot ask our own
	// puppet for a vCard.
	send(t, a, room, message(foreign("libera", "carol", "carol"), "hi from irc"))
	alice.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool { return s.Body() == "hi from irc" })
	a.mu.Lock()
	puppetNick := ""
	for nick := range a.rooms[rj.String()].puppetNicks {
		puppetNick = nick
	}
	a.mu.Unlock()
	if puppetNick == "" {
		t.Fatal("no puppet in the room")
	}
	c, err := a.current()
	if err != nil {
		t.Fatal(err)
	}
	fake := el("jabber:component:accept", "presence", "from", room+"/"+puppetNick, "to", srv.Component, "id", "x1")
	fake.add(el(nsVCardUpdate, "x").add(el(nsVCardUpdate, "photo").withText(testenv.SHA1Hex(pic))))
	st, err := parseStanza(fake)
	if err != nil {
		t.Fatal(err)
	}
	// dispatch decides synchronously: a fetch would be under way now.
	a.dispatch(c, st)
	a.mu.Lock()
	busy := len(a.avatarBusy)
	a.mu.Unlock()
	if busy != 0 {
		t.Fatalf("%d avatar fetches started for our own puppet's presence", busy)
	}
	for _, who := range fetched.list() {
		if who == room+"/"+puppetNick || who == room+"/"+a.cfg.Nick {
			t.Fatalf("the bot asked its own occupant %s for a vCard", who)
		}
	}
}

func vcard(photo ...*element) *element {
	return el(nsVCard, "vCard").add(el(nsVCard, "PHOTO").add(photo...))
}

func TestVCardPhotoParsing(t *testing.T) {
	pic := testenv.PNG()
	b64 := base64.StdEncoding.EncodeToString(pic)
	huge := strings.Repeat("A", base64.StdEncoding.EncodedLen(adapters.MaxAvatarSize)+4)
	html := base64.StdEncoding.EncodeToString([]byte("<html><script>alert(1)</script></html>"))
	cases := []struct {
		name     string
		card     *element
		wantData []byte
		wantMime string
		wantErr  error // nil: no error; errAny: some error
	}{
		{"photo with line breaks", vcard(el(nsVCard, "TYPE").withText("image/png"), el(nsVCard, "BINVAL").withText(b64[:10]+"\n "+b64[10:])), pic, "image/png", nil},
		{"declared type ignored", vcard(el(nsVCard, "TYPE").withText("text/html"), el(nsVCard, "BINVAL").withText(b64)), pic, "image/png", nil},
		{"no photo", el(nsVCard, "vCard"), nil, "", nil},
		{"no vCard", nil, nil, "", nil},
		{"wrong namespace", el("urn:other", "vCard").add(el("urn:other", "PHOTO")), nil, "", nil},
		{"URL only", vcard(el(nsVCard, "EXTVAL").withText("https://example.org/a.png")), nil, "", nil},
		{"huge BINVAL", vcard(el(nsVCard, "BINVAL").withText(huge)), nil, "", errAvatarTooLarge},
		{"bad base64", vcard(el(nsVCard, "BINVAL").withText("not*base64!")), nil, "", errAny},
		{"not an image", vcard(el(nsVCard, "TYPE").withText("image/png"), el(nsVCard, "BINVAL").withText(html)), nil, "", errNotImage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mime, data, err := vcardPhoto(c.card)
			switch {
			case c.wantErr == errAny && err == nil, c.wantErr != errAny && !errors.Is(err, c.wantErr):
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if !bytes.Equal(data, c.wantData) || mime != c.wantMime {
				t.Fatalf("got %s, %d bytes; want %s, %d bytes", mime, len(data), c.wantMime, len(c.wantData))
			}
		})
	}
	// What a presence advertises must be the photo's SHA-1.
	if adapters.AvatarHash(pic) != testenv.SHA1Hex(pic) || adapters.AvatarHash(pic) == adapters.AvatarHash(testenv.PNG()) {
		t.Fatal("avatar hash is not the photo's SHA-1")
	}
}

var errAny = errors.New("any error")

func TestPhotoHashParsing(t *testing.T) {
	h := testenv.SHA1Hex(testenv.PNG())
	pres := func(x ...*element) *element { return el("jabber:client", "presence").add(x...) }
	photo := func(text string) *element {
		return el(nsVCardUpdate, "x").add(el(nsVCardUpdate, "photo").withText(text))
	}
	cases := []struct {
		name string
		e    *element
		hash string
		ok   bool
	}{
		{"hash", pres(photo(h)), h, true},
		{"upper case and spaces", pres(photo(" " + strings.ToUpper(h) + "\n")), h, true},
		{"empty: no avatar", pres(photo("")), "", true},
		{"no photo element: not ready", pres(el(nsVCardUpdate, "x")), "", false},
		{"no x", pres(), "", false},
		{"not a SHA-1", pres(photo("../../etc/passwd")), "", false},
		{"too long", pres(photo(h + "00")), "", false},
		{"wrong namespace", pres(el("urn:other", "x").add(el("urn:other", "photo").withText(h))), "", false},
	}
	for _, c := range cases {
		hash, ok := parsePhoto(c.e)
		if hash != c.hash || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.name, hash, ok, c.hash, c.ok)
		}
	}
}
