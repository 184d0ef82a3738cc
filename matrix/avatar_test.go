package matrix

import (
	"bytes"
	"context"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// avatarOf is a user's avatar as the homeserver reports it to another
// user: its mxc URI and the bytes it downloads as.
func avatarOf(t *testing.T, c *testenv.MatrixClient, user id.UserID) (id.ContentURI, []byte) {
	t.Helper()
	ctx, cancel := contextWithTimeout(waitFor)
	defer cancel()
	res, err := c.GetAvatarURL(ctx, user)
	if err != nil {
		t.Fatalf("avatar of %s: %v", user, err)
	}
	if res.IsEmpty() {
		return res, nil
	}
	data, err := c.DownloadBytes(ctx, res)
	if err != nil {
		t.Fatalf("download avatar %s of %s: %v", res, user, err)
	}
	return res, data
}

func TestGhostAvatars(t *testing.T) {
	s := newServer(t)
	avatars := adapterstest.NewAvatars()
	s.avatars = avatars
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	say := func(from bridge.Sender, text string) id.UserID {
		t.Helper()
		m := &bridge.Message{Header: header(from), Text: text}
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
		})
		return waitEvent(t, alice, text, bodyIs(rid, text)).Sender
	}

	// Carol's network has her picture: her ghost shows exactly it, under
	// her usual name.
	carol := foreign("carol@example.org", "Carol")
	pic := testenv.PNG()
	if err := avatars.PutAvatar(context.Background(), carol, "image/png", pic); err != nil {
		t.Fatal(err)
	}
	ghost := say(carol, "hello with a face")
	mxc, got := avatarOf(t, alice, ghost)
	if !bytes.Equal(got, pic) {
		t.Fatalf("ghost avatar %s is %d bytes, not her %d-byte picture", mxc, len(got), len(pic))
	}
	if name := alice.DisplayName(ghost); name != "Carol (elsewhere)" {
		t.Errorf("ghost display name %q", name)
	}
	// The room shows it too: the ghost's membership carries it.
	waitEvent(t, alice, "the ghost's membership with the avatar", func(e *event.Event) bool {
		return e.RoomID == rid && e.Type == event.StateMember && e.GetStateKey() == string(ghost) &&
			e.Content.AsMember().AvatarURL == mxc.CUString()
	})

	// Unchanged: not uploaded again (the same mxc URI stays).
	say(carol, "still me")
	if again, _ := avatarOf(t, alice, ghost); again != mxc {
		t.Errorf("avatar changed from %s to %s without a new picture", mxc, again)
	}

	// A new picture replaces the old one.
	pic2 := testenv.PNG()
	avatars.PutAvatar(context.Background(), carol, "image/png", pic2)
	say(carol, "new haircut")
	mxc2, got := avatarOf(t, alice, ghost)
	if mxc2 == mxc || !bytes.Equal(got, pic2) {
		t.Fatalf("after the change: %s, %d bytes; want her new %d-byte picture", mxc2, len(got), len(pic2))
	}

	// Removed on her network: removed on the ghost.
	avatars.PutAvatar(context.Background(), carol, "", nil)
	say(carol, "faceless now")
	if mxc3, _ := avatarOf(t, alice, ghost); !mxc3.IsEmpty() {
		t.Fatalf("after removal the ghost still has %s", mxc3)
	}

	// A sender whose network has no avatars: no picture, no trouble.
	dave := foreign("dave", "Dave")
	daveGhost := say(dave, "no face here")
	if u, _ := avatarOf(t, alice, daveGhost); !u.IsEmpty() {
		t.Fatalf("dave's ghost has avatar %s", u)
	}
}
