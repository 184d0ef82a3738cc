package webrtc

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// clusterServers are two instances of one web network sharing a real
// nats-server through cluster.Relay, as two Switchboard processes of a
// cluster do, with the same people.
func clusterServers(t *testing.T) (a, b *server) {
	srv := testenv.NATS(t)
	var out [2]*server
	for i, name := range []string{"a", "b"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := cluster.Connect(ctx, cluster.Options{URLs: []string{srv.URL}, Instance: name, TTL: 2 * time.Second, Log: testenv.NewLog(t).Logger()})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		ad := newAdapter(t, testConfig())
		ad.UseRelay(n.Relay())
		ad.UsePeople([]adapters.PersonalAccount{{Person: "alice", Name: "Alice Liddell", ID: "alice", Token: aliceToken}})
		out[i] = startAdapter(t, ad, "lobby", "other")
	}
	return out[0], out[1]
}

// seesRemote waits until s knows of the peer id of another instance.
func seesRemote(t *testing.T, s *server, id string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		s.a.mu.Lock()
		ok := slices.ContainsFunc(s.a.remotePeers(""), func(e rosterEntry) bool { return e.ID == id })
		s.a.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other instance's %s unknown after %v", id, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count is how many frames a peer got that match.
func count(p *testenv.WebRTCPeer, match func(testenv.WebRTCFrame) bool) int {
	n := 0
	for _, f := range p.Frames() {
		if match(f) {
			n++
		}
	}
	return n
}

// TestClusterRelay (issue 26, test 6 in small): peers on two instances
// in one room see each other's messages, and what the router delivers on
// one instance only, once each; a peer of another room sees none of it.
func TestClusterRelay(t *testing.T) {
	a, b := clusterServers(t)
	ctx := context.Background()
	anna := testenv.MustDialWebRTC(t, a.url, "lobby", "", "anna", "anna-1")
	seesRemote(t, b, "anna-1")
	ben := testenv.MustDialWebRTC(t, b.url, "lobby", "", "ben", "ben-1")
	other := testenv.MustDialWebRTC(t, b.url, "other", "", "otto", "otto-1")
	welcome := ben.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })
	if len(welcome.Peers) != 1 || welcome.Peers[0].ID != "anna-1" {
		t.Errorf("ben's welcome names %+v, want anna of the other instance", welcome.Peers)
	}
	anna.Wait(t, wait, "ben's join", func(f testenv.WebRTCFrame) bool { return f.Type == "join" && f.Sender.ID == "ben-1" })

	msg := func(text string) func(testenv.WebRTCFrame) bool {
		return func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == text }
	}
	anna.Say("hello from a")
	ben.Say("hello from b")
	echo := anna.Wait(t, wait, "her echo", msg("hello from a"))
	if got := ben.Wait(t, wait, "anna's message", msg("hello from a")); got.ID != echo.ID || got.Sender.ID != "anna-1" {
		t.Errorf("ben got %s, anna's echo %s", got.Raw, echo.Raw)
	}
	anna.Wait(t, wait, "ben's message", msg("hello from b"))

	// The router delivers to the web network on one instance (the lease
	// holder): its peers and the other instance's get it.
	foreign := adapterstest.Message(bridge.Sender{Network: "irc", ID: "carol", Name: "carol"}, "hi from irc")
	if _, err := a.a.Send(ctx, &bridge.Delivery{Room: "lobby", Event: foreign}); err != nil {
		t.Fatal(err)
	}
	ben.Wait(t, wait, "the channel's message", msg("hi from irc"))
	anna.Wait(t, wait, "the channel's message", msg("hi from irc"))

	// b learnt who wrote anna's message: ben may not edit it.
	ben.Send(map[string]any{"type": "edit", "target": echo.ID, "text": "forged"})
	ben.Wait(t, wait, "not_allowed", func(f testenv.WebRTCFrame) bool { return f.Code == "not_allowed" })

	// A direct message delivered on a goes to alice's page on b.
	alice, err := testenv.DialWebRTCHeader(t, b.url, "lobby", personHeader(aliceToken))
	if err != nil {
		t.Fatal(err)
	}
	alice.Send(map[string]any{"type": "hello"})
	alice.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })
	seesRemote(t, a, "alice")
	if _, err := a.a.Send(ctx, dmTo("alice", "are you there?")); err != nil {
		t.Fatalf("direct message with her page open on b: %v", err)
	}
	alice.Wait(t, wait, "the direct message", func(f testenv.WebRTCFrame) bool {
		return f.Type == "direct" && readDirect(t, f).Event.Text == "are you there?"
	})

	time.Sleep(time.Second) // a second copy would come by now
	for _, c := range []struct {
		p    *testenv.WebRTCPeer
		who  string
		text string
		want int
	}{
		{anna, "anna", "hello from a", 1}, {anna, "anna", "hello from b", 1}, {anna, "anna", "hi from irc", 1},
		{ben, "ben", "hello from a", 1}, {ben, "ben", "hello from b", 1}, {ben, "ben", "hi from irc", 1},
		{other, "otto in another room", "hello from a", 0}, {other, "otto", "hello from b", 0}, {other, "otto", "hi from irc", 0},
	} {
		if n := count(c.p, msg(c.text)); n != c.want {
			t.Errorf("%s saw %q %d times, want %d", c.who, c.text, n, c.want)
		}
	}
	if n := count(alice, func(f testenv.WebRTCFrame) bool { return f.Type == "direct" }); n != 1 {
		t.Errorf("alice saw the direct message %d times", n)
	}
	if n := count(anna, func(f testenv.WebRTCFrame) bool { return f.Type == "join" && f.Sender.ID == "ben-1" }); n != 1 {
		t.Errorf("anna saw ben join %d times", n)
	}
}
