package matrix

import (
	"bytes"
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// setAvatar uploads data as c's picture (none when data is nil) and waits
// until the room shows it in c's membership, as everyone there sees it.
func setAvatar(t *testing.T, c *testenv.MatrixClient, rid id.RoomID, mime string, data []byte) {
	t.Helper()
	ctx, cancel := contextWithTimeout(waitFor)
	defer cancel()
	var mxc id.ContentURI
	if data != nil {
		up, err := c.UploadBytes(ctx, data, mime)
		if err != nil {
			t.Fatal(err)
		}
		mxc = up.ContentURI
	}
	if err := c.SetAvatarURL(ctx, mxc); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, "the membership with the new avatar", func(e *event.Event) bool {
		return e.RoomID == rid && e.Type == event.StateMember && e.GetStateKey() == string(c.UserID) &&
			e.Content.AsMember().AvatarURL == mxc.CUString()
	})
}

// storedAvatar waits until the store holds want (nil: "no avatar") for s.
func storedAvatar(t *testing.T, st adapters.AvatarStore, s bridge.Sender, want []byte) adapters.Avatar {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		av, ok, err := st.Avatar(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if ok && bytes.Equal(av.Data, want) {
			return av
		}
		if time.Now().After(deadline) {
			t.Fatalf("store has %v, %d bytes for %s; want %d bytes", ok, len(av.Data), s.ID, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUserAvatars(t *testing.T) {
	s := newServer(t)
	avatars := adapterstest.NewAvatars()
	s.avatars = avatars
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)
	speak := func(c *testenv.MatrixClient, text string) bridge.Sender {
		t.Helper()
		c.Text(rid, text)
		return rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == text }).Sender
	}

	// Alice sets a picture and speaks: the store gets exactly it, for
	// the sender her messages carry.
	pic := testenv.PNG()
	setAvatar(t, alice, rid, "image/png", pic)
	aliceSender := speak(alice, "hello with a face")
	if av := storedAvatar(t, avatars, aliceSender, pic); av.Mime != "image/png" {
		t.Fatalf("stored as %s", av.Mime)
	}

	// Unchanged: not stored again.
	puts := avatars.Puts()
	speak(alice, "still me")
	time.Sleep(300 * time.Millisecond)
	if avatars.Puts() != puts {
		t.Fatalf("the same picture was stored again (%d puts, was %d)", avatars.Puts(), puts)
	}

	// A new picture replaces the old one.
	pic2 := testenv.PNG()
	setAvatar(t, alice, rid, "image/png", pic2)
	speak(alice, "new haircut")
	storedAvatar(t, avatars, aliceSender, pic2)

	// Something that is not an image, whatever its declared type, is no
	// picture; neither is a removed one.
	setAvatar(t, alice, rid, "image/png", []byte("<html><script>alert(1)</script></html>"))
	speak(alice, "sneaky")
	storedAvatar(t, avatars, aliceSender, nil)
	setAvatar(t, alice, rid, "image/png", pic)
	speak(alice, "face again")
	storedAvatar(t, avatars, aliceSender, pic)
	setAvatar(t, alice, rid, "", nil)
	speak(alice, "faceless")
	storedAvatar(t, avatars, aliceSender, nil)

	// Bob never had one: the store knows he has none.
	bob := s.Client(t, "bob")
	bob.Join(string(rid))
	bobSender := speak(bob, "hi, no face")
	storedAvatar(t, avatars, bobSender, nil)
}
