package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// The load a relayed message puts on the homeserver: once a ghost is
// registered, named and in the room, each message it relays is one
// request, the send; and the homeserver files no notifications for the
// bot or the other ghosts (a few database writes each per message, for
// nobody), only for its own users.
func TestGhostMessageLoad(t *testing.T) {
	s := newServer(t)
	proxy := testenv.NewCountingProxy(t, s.URL)
	s.network.Matrix.Homeserver = proxy.URL
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	carol, dave := foreign("carol", "Carol"), foreign("dave", "Dave")
	say := func(who bridge.Sender, text string) {
		m := &bridge.Message{Header: header(who), Text: text}
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
		})
	}
	say(carol, "carol here")
	say(dave, "dave here")
	before := proxy.Counts()
	const n = 10
	for i := range n {
		say([]bridge.Sender{carol, dave}[i%2], fmt.Sprintf("message %d", i))
	}
	list, per := proxy.Since(before, n)
	if sends := proxy.Counts()["PUT /_matrix/client/v3/rooms/*/send/m.room.message/*"] - before["PUT /_matrix/client/v3/rooms/*/send/m.room.message/*"]; per != 1 || sends != n {
		t.Errorf("%.2f requests per relayed message, want only the send:\n%s", per, list)
	}
	last := waitEvent(t, alice, "the last message", bodyIs(rid, fmt.Sprintf("message %d", n-1)))

	// The homeserver handles a message's notifications member by member,
	// message by message: once alice has hers for the last one, the
	// others' for every message would be there too.
	notifications := func(token string, as id.UserID) []string {
		u := s.URL + "/_matrix/client/v3/notifications"
		if as != "" {
			u += "?user_id=" + url.QueryEscape(string(as))
		}
		resp, body := testenv.HTTP(t, "GET", u, token, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("notifications of %s: %d %s", as, resp.StatusCode, body)
		}
		var r struct {
			Notifications []struct {
				Event struct {
					ID string `json:"event_id"`
				} `json:"event"`
			} `json:"notifications"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range r.Notifications {
			ids = append(ids, n.Event.ID)
		}
		return ids
	}
	for deadline := time.Now().Add(waitFor); ; time.Sleep(100 * time.Millisecond) {
		ids := notifications(alice.AccessToken, "")
		if slices.Contains(ids, string(last.ID)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice was never notified of the last message %s: %v", last.ID, ids)
		}
	}
	for _, u := range []id.UserID{a.botID, id.NewUserID(a.ghosts.localpart(dave), s.cfg.Domain)} {
		if ids := notifications(s.cfg.ASToken, u); len(ids) > 0 {
			t.Errorf("the homeserver filed %d notifications for %s", len(ids), u)
		}
	}
}
