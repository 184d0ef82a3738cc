package service

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A burst to an XMPP MUC goes out pipelined: the next messages are
// written while the room's reflections of the earlier ones are on their
// way. When the connection drops in the middle of the burst, what the
// room had is not sent again (a reflection lost with the connection is
// looked up in the room's archive), what it did not have is, and the
// people in the room see every message once, in order.
func TestPipelinedBurstSurvivesADroppedConnection(t *testing.T) {
	const total, cutAfter = 600, 150
	srv := testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: xmppUsers})
	room := srv.Room("burst")
	broker := testenv.Mosquitto(t)
	// The first component connection is cut once Prosody has sent
	// cutAfter messages over it; the adapter's reconnection is left alone.
	var cut atomic.Bool
	proxy := testenv.NewDropProxy(t, srv.ComponentAddr, func(seen []byte) bool {
		return !cut.Load() && bytes.Count(seen, []byte("<message")) >= cutAfter && cut.CompareAndSwap(false, true)
	})
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  devices: { type: mqtt, broker: %q, client_id: sb-burst }
  jabber: { type: xmpp, mode: puppet, server: %q, component: { domain: %q, secret: %q } }
links:
  burst: [ "devices:chat/burst", "jabber:%s" ]
`, t.TempDir(), broker.URL, proxy.Addr, srv.Component, srv.ComponentSecret, room)))
	if err != nil {
		t.Fatal(err)
	}
	alice := srv.Client(t, "alice", xmppUsers["alice"])
	if err := alice.Join(room, "alice"); err != nil {
		t.Fatal(err)
	}
	runService(t, cfg)

	dev := broker.Client(t, "")
	for i := range total {
		testenv.MQTTPublish(t, dev, "chat/burst/in/flood", 1, false, fmt.Sprintf("burst %d", i))
	}
	got := 0
	deadline := time.Now().Add(2 * patience)
	for i := 0; got < total; i++ {
		n, _, err := alice.WaitIndex(i, time.Until(deadline), func(s testenv.XMPPStanza) bool {
			return s.Kind() == "message" && s.Type() == "groupchat" && strings.HasPrefix(s.Body(), "burst ")
		})
		if err != nil {
			t.Fatalf("after %d messages in the room: %v", got, err)
		}
		i = n
		got++
	}
	// Anything sent twice would come after the last one.
	time.Sleep(2 * time.Second)
	if !cut.Load() {
		t.Fatal("the connection was never cut: the test proves nothing")
	}
	if proxy.Dropped() != 1 || proxy.Accepted() < 2 {
		t.Errorf("the proxy dropped %d of %d connections, want the first one of at least two", proxy.Dropped(), proxy.Accepted())
	}
	seen := 0
	for _, s := range alice.Stanzas() {
		if s.Kind() == "message" && s.Type() == "groupchat" && strings.HasPrefix(s.Body(), "burst ") {
			if want := fmt.Sprintf("burst %d", seen); s.Body() != want {
				t.Fatalf("message %d in the room is %q, want %q: every message once, in order", seen, s.Body(), want)
			}
			seen++
		}
	}
	if seen != total {
		t.Errorf("the room saw %d messages, want %d", seen, total)
	}
}
