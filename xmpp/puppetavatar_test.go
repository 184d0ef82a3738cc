package xmpp

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// photoOf reads what a presence advertises: the photo hash, whether
// there is a photo element, whether there is an x element at all.
func photoOf(s testenv.XMPPStanza) (hash string, photo, x bool) {
	xe := s.Child(nsVCardUpdate, "x")
	p := xe.Child(nsVCardUpdate, "photo")
	return strings.TrimSpace(p.TextOrEmpty()), p != nil, xe != nil
}

// fetchVCard asks for an occupant's vCard through the room, as clients
// do, and returns the photo's type and bytes (nil: the card has none).
func fetchVCard(t *testing.T, h *human, nick string) (mime string, data []byte) {
	t.Helper()
	occ, err := h.room.WithResource(nick)
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.c.IQ(occ, "get", `<vCard xmlns="vcard-temp"/>`)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type() != "result" {
		t.Fatalf("vCard request to %s failed: %s", occ, st.Raw)
	}
	card := st.Child(nsVCard, "vCard")
	if card == nil {
		t.Fatalf("vCard answer without a vCard: %s", st.Raw)
	}
	photo := card.Child(nsVCard, "PHOTO")
	if photo == nil {
		return "", nil
	}
	data, err = base64.StdEncoding.DecodeString(photo.Child(nsVCard, "BINVAL").TextOrEmpty())
	if err != nil {
		t.Fatalf("vCard photo not base64: %v", err)
	}
	return photo.Child(nsVCard, "TYPE").TextOrEmpty(), data
}

func TestPuppetAvatars(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "puppetavatars")
	a, _ := newTestAdapter(t, srv, setup{})
	avatars := adapterstest.NewAvatars()
	a.UseAvatars(avatars)
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	ctx := context.Background()

	// Carol (Matrix) has a picture, Dave has removed his, nothing is
	// known of Erin.
	carol := foreign("matrix", "@carol:example.org", "Carol")
	dave := foreign("matrix", "@dave:example.org", "Dave")
	erin := foreign("matrix", "@erin:example.org", "Erin")
	pic := testenv.PNG()
	if err := avatars.PutAvatar(ctx, carol, "image/png", pic); err != nil {
		t.Fatal(err)
	}
	if err := avatars.PutAvatar(ctx, dave, "", nil); err != nil {
		t.Fatal(err)
	}

	presenceOf := func(from int, nick string) testenv.XMPPStanza {
		t.Helper()
		st, err := alice.c.WaitFrom(from, waitFor, func(s testenv.XMPPStanza) bool {
			return s.Kind() == "presence" && s.From() == room+"/"+nick && s.Type() == ""
		})
		if err != nil {
			t.Fatalf("no presence of %s: %v", nick, err)
		}
		return st
	}

	mark := alice.c.Len()
	send(t, a, room, message(carol, "hello from matrix"))
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "hello from matrix" })
	nick := "Carol (matrix)"
	if hash, _, _ := photoOf(presenceOf(mark, nick)); hash != testenv.SHA1Hex(pic) {
		t.Fatalf("Carol's puppet advertises photo %q, want %q", hash, testenv.SHA1Hex(pic))
	}
	if mime, data := fetchVCard(t, alice, nick); !bytes.Equal(data, pic) || mime != "image/png" {
		t.Fatalf("Carol's vCard photo: %s, %d bytes; want image/png, her %d bytes", mime, len(data), len(pic))
	}

	// No avatar: an empty photo, and a card without one.
	mark = alice.c.Len()
	send(t, a, room, message(dave, "no face"))
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "no face" })
	if hash, photo, _ := photoOf(presenceOf(mark, "Dave (matrix)")); !photo || hash != "" {
		t.Fatalf("Dave's puppet advertises photo element %v %q; want an empty one", photo, hash)
	}
	if _, data := fetchVCard(t, alice, "Dave (matrix)"); data != nil {
		t.Fatalf("Dave's vCard has a %d-byte photo; he has none", len(data))
	}

	// Unknown: nothing claimed either way.
	mark = alice.c.Len()
	send(t, a, room, message(erin, "who knows"))
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "who knows" })
	if _, _, x := photoOf(presenceOf(mark, "Erin (matrix)")); x {
		t.Fatal("Erin's puppet advertises an avatar state; nothing is known of her")
	}

	// Carol changes her picture: her next message is preceded by a
	// presence with the new hash, and her card has the new picture.
	pic2 := testenv.PNG()
	if err := avatars.PutAvatar(ctx, carol, "image/png", pic2); err != nil {
		t.Fatal(err)
	}
	mark = alice.c.Len()
	send(t, a, room, message(carol, "new face"))
	msgIdx, _, err := alice.c.WaitIndex(mark, waitFor, func(s testenv.XMPPStanza) bool { return s.Body() == "new face" })
	if err != nil {
		t.Fatal(err)
	}
	presIdx, pres, err := alice.c.WaitIndex(mark, waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == room+"/"+nick
	})
	if err != nil {
		t.Fatalf("no fresh presence after Carol's change: %v", err)
	}
	if hash, _, _ := photoOf(pres); hash != testenv.SHA1Hex(pic2) || presIdx > msgIdx {
		t.Fatalf("fresh presence (#%d, message #%d) advertises %q, want %q before the message", presIdx, msgIdx, hash, testenv.SHA1Hex(pic2))
	}
	if _, data := fetchVCard(t, alice, nick); !bytes.Equal(data, pic2) {
		t.Fatalf("after the change Carol's vCard photo is %d bytes, not her new picture", len(data))
	}

	// A vCard request to the component itself: not a puppet.
	st, err := alice.c.IQ(jid.MustParse(srv.Component), "get", `<vCard xmlns="vcard-temp"/>`)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type() != "error" || st.Child("", "error").Child("", "item-not-found") == nil {
		t.Fatalf("vCard of the component: %s; want item-not-found", st.Raw)
	}
}

// TestVCardPhotoRoundTrip: the card a puppet answers with is one the
// adapter (and so any XEP-0054 client) reads back byte for byte.
func TestVCardPhotoRoundTrip(t *testing.T) {
	pic := testenv.PNG()
	card := el(nsVCard, "vCard").add(vcardPhotoElement("image/png", pic))
	parsed, err := parseStanza(el("jabber:component:accept", "iq", "type", "result", "id", "1").add(card))
	if err != nil {
		t.Fatal(err)
	}
	mime, data, err := vcardPhoto(parsed.payload)
	if err != nil || mime != "image/png" || !bytes.Equal(data, pic) {
		t.Fatalf("read back: %s, %d bytes, %v; want image/png, %d bytes", mime, len(data), err, len(pic))
	}
}
