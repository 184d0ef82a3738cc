package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
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
	s.network.Section.(*Config).Homeserver = proxy.URL
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	carol, dave := foreign("carol", "Carol"), foreign("dave", "Dave")
	say(t, a, rid, carol, "carol here")
	say(t, a, rid, dave, "dave here")
	before := proxy.Counts()
	const n = 10
	for i := range n {
		say(t, a, rid, []bridge.Sender{carol, dave}[i%2], fmt.Sprintf("message %d", i))
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

// say delivers a message from who to the room, as the router would.
func say(t *testing.T, a *Adapter, rid id.RoomID, who bridge.Sender, text string) {
	t.Helper()
	m := &bridge.Message{Header: header(who), Text: text}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
	})
}

// A ghost made before ghosts were quieted, which only sits in its room,
// is quieted when Switchboard starts.
func TestGhostsMadeBeforeQuietedAtStart(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a1, _ := roomWithBot(t, s, alice)
	carol := foreign("carol", "Carol")
	say(t, a1, rid, carol, "hello")
	ghost := id.NewUserID(a1.ghosts.localpart(carol), s.cfg.Domain)
	rule := s.URL + "/_matrix/client/v3/pushrules/global/override/.m.rule.master?user_id=" + url.QueryEscape(string(ghost))
	master := func() bool {
		resp, body := testenv.HTTP(t, "GET", rule, s.cfg.ASToken, nil)
		var r struct{ Enabled bool }
		if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil {
			t.Fatalf("%s's master rule: %d %s", ghost, resp.StatusCode, body)
		}
		return r.Enabled
	}
	if !master() {
		t.Fatalf("%s's notifications are on after it spoke", ghost)
	}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	a1.Stop(ctx)
	// As before the change: notifications on, nothing remembered.
	if resp, body := testenv.HTTP(t, "PUT", strings.Replace(rule, "?", "/enabled?", 1), s.cfg.ASToken, []byte(`{"enabled":false}`)); resp.StatusCode != 200 {
		t.Fatalf("turning %s's notifications back on: %d %s", ghost, resp.StatusCode, body)
	}
	if err := s.state.Delete(ctx, quietPrefix+string(ghost)); err != nil {
		t.Fatal(err)
	}
	if master() {
		t.Fatal("the master rule is still on")
	}
	startAdapter(t, s, string(rid))
	for deadline := time.Now().Add(waitFor); !master(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's notifications still on after a start", ghost)
		}
	}
}
