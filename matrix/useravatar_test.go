package matrix

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
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

// TestFetchAvatar checks what a downloaded avatar becomes, against a
// stand-in homeserver on 127.0.0.1.
func TestFetchAvatar(t *testing.T) {
	a, _ := unitAdapter(t)
	pic := testenv.PNG()
	huge := append(testenv.PNG(), make([]byte, adapters.MaxAvatarSize)...)
	var paths []string
	var pathsMu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pathsMu.Lock()
		paths = append(paths, r.URL.Path)
		pathsMu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+a.cfg.ASToken {
			http.Error(w, `{"errcode":"M_MISSING_TOKEN"}`, http.StatusUnauthorized)
			return
		}
		old := strings.HasPrefix(r.URL.Path, "/_matrix/media/v3/download/")
		switch path.Base(r.URL.Path) {
		case "pic":
			w.Write(pic)
		case "oldonly":
			if !old {
				http.Error(w, `{"errcode":"M_UNRECOGNIZED"}`, http.StatusNotFound)
				return
			}
			w.Write(pic)
		case "gone":
			http.Error(w, `{"errcode":"M_NOT_FOUND"}`, http.StatusNotFound)
		case "huge":
			w.Write(huge)
		case "html":
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte("<html><script>alert(1)</script></html>"))
		default:
			http.Error(w, "down", http.StatusBadGateway)
		}
	}))
	defer hs.Close()
	a.hsURL = hs.URL
	cases := []struct {
		mxc      id.ContentURIString
		wantData []byte
		wantErr  bool
	}{
		{"mxc://localhost/pic", pic, false},
		{"mxc://localhost/oldonly", pic, false}, // homeserver without authenticated media
		{"", nil, false},                        // removed
		{"https://example.org/a.png", nil, false},
		{"mxc://localhost/gone", nil, false},
		{"mxc://localhost/huge", nil, false},
		{"mxc://localhost/html", nil, false},
		{"mxc://localhost/broken", nil, true}, // worth trying again
	}
	for _, c := range cases {
		mime, data, err := a.fetchAvatar(t.Context(), c.mxc)
		if (err != nil) != c.wantErr || !bytes.Equal(data, c.wantData) {
			t.Errorf("%q: %s, %d bytes, err %v; want %d bytes, error %v", c.mxc, mime, len(data), err, len(c.wantData), c.wantErr)
		}
		if data != nil && mime != "image/png" {
			t.Errorf("%q: type %q", c.mxc, mime)
		}
	}
	pathsMu.Lock()
	defer pathsMu.Unlock()
	if !slices.Contains(paths, "/_matrix/client/v1/media/download/localhost/pic") {
		t.Errorf("the authenticated endpoint was not used: %v", paths)
	}
}
