package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
	"github.com/switchboard-chat/switchboard/status"
)

// TestIRCCatchUpAcrossKills: what is said in an IRC channel with
// InspIRCd's chanhistory (+H) while Switchboard is down (kill -9 of the
// binary) reaches XMPP and MQTT once it is back, every line exactly once
// and in order, and a second crash and restart repeats none of it. What
// was said before the channel was first linked (Switchboard's first
// start) is never bridged. /api/status shows the channel's catch-up.
func TestIRCCatchUpAcrossKills(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts Switchboard")
	}
	const (
		channel = "#room"
		root    = "sb/room"
		missed  = 40
		wait    = 30 * time.Second
	)
	users := map[string]string{"alice": "alice-pw"}
	irc := testenv.InspIRCd(t)
	xmppSrv := testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: users})
	broker := testenv.Mosquitto(t)
	muc := xmppSrv.Room("lobby")
	bin := buildSwitchboard(t, t.TempDir())

	// A conversation before the channel is linked, on a channel keeping
	// its history.
	carol := irc.Client(t, "carol")
	carol.Join(channel)
	carol.Send("MODE", channel, "+H", "100:1d")
	if _, err := carol.Wait(10*time.Second, func(l testenv.IRCLine) bool {
		return l.Command == "MODE" && strings.Contains(strings.Join(l.Params, " "), "+H")
	}); err != nil {
		for _, l := range carol.Lines() {
			t.Log(l.Raw)
		}
		t.Fatalf("MODE +H: %v", err)
	}
	for i := 1; i <= 3; i++ {
		carol.Say(channel, fmt.Sprintf("before the link %d", i))
	}

	alice := xmppSrv.Client(t, "alice", users["alice"])
	if err := alice.Join(muc, "alice"); err != nil {
		t.Fatal(err)
	}
	sub := broker.Subscribe(t, root+"/out/#", 1)

	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := testenv.WriteFile(t, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
http: { listen: %q }
networks:
  libera:
    type: irc
    server: %s
    nick: switchboard
    flood: { burst: 50, interval: 10ms }
    reconnect_max: 2s
    # rate stays at its default (1/s, burst 10): catch-up is exempt.
  devices: { type: mqtt, broker: %q, client_id: switchboard-catchup }
  jabber: { type: xmpp, mode: puppet, server: %q, component: { domain: %q, secret: %q } }
links:
  lobby: [ "libera:%s", "devices:%s", "jabber:%s" ]
`, dir, httpAddr, irc.Addr, broker.URL, xmppSrv.ComponentAddr, xmppSrv.Component, xmppSrv.ComponentSecret, channel, root, muc))
	sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: httpAddr}

	// Its status, once every network is up and the channel played back
	// (+H gives a playback on every join, empty or not).
	catchUp := func(after time.Time) *status.CatchUp {
		t.Helper()
		deadline := time.Now().Add(wait)
		for {
			st := apiStatus(t, httpAddr)
			up := len(st.Networks) == 3
			for _, n := range st.Networks {
				up = up && n.State == "up"
			}
			for _, l := range st.Links {
				for _, r := range l.Rooms {
					if r.Room == "libera:"+channel && up && r.CatchUp != nil && r.CatchUp.At.After(after) {
						return r.CatchUp
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no catch-up of libera:%s on /api/status after %v: %+v", channel, wait, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// What alice and the MQTT subscriber saw of carol, in order.
	var mqttTexts []string
	mqttUntil := func(text string) {
		t.Helper()
		for {
			m := sub.Next(t, wait)
			var ev mqtt.OutEvent
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				t.Fatalf("payload %q: %v", m.Payload, err)
			}
			if ev.Type == "message" && ev.Sender.Name == "carol" {
				mqttTexts = append(mqttTexts, ev.Text)
				if ev.Text == text {
					return
				}
			}
		}
	}
	fromCarol := muc.String() + "/carol (libera)"
	xmppUntil := func(text string) {
		t.Helper()
		if _, err := alice.WaitFor(wait, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && s.From() == fromCarol && s.Body() == text
		}); err != nil {
			t.Fatalf("XMPP: %q not seen: %v", text, err)
		}
	}
	xmppTexts := func() []string {
		var out []string
		for _, s := range alice.Stanzas() {
			if s.Kind() == "message" && s.Type() == "groupchat" && s.From() == fromCarol {
				out = append(out, s.Body())
			}
		}
		return out
	}
	say := func(text string) {
		carol.Say(channel, text)
		xmppUntil(text)
		mqttUntil(text)
	}

	t0 := time.Now()
	sb.Start(t)
	if c := catchUp(t0); c.Recovered != 0 {
		t.Errorf("first start, on a channel never linked: recovered %d lines, want 0", c.Recovered)
	}
	say("linked now")
	// The channel's last line is saved within a second (not once per
	// line); a crash within that second would play it back again.
	time.Sleep(1500 * time.Millisecond)

	sb.Kill()
	var want []string
	for i := 1; i <= missed; i++ {
		want = append(want, fmt.Sprintf("said while down %02d", i))
		carol.Say(channel, want[i-1])
	}
	t1 := time.Now()
	sb.Restart()
	if c := catchUp(t1); c.Recovered != missed {
		t.Errorf("after a kill: recovered %d lines, want %d", c.Recovered, missed)
	}
	xmppUntil(want[missed-1])
	mqttUntil(want[missed-1])
	say("back")
	// A line from XMPP, said on IRC by alice's puppet: in the next
	// playback, after the last line of carol's, and never bridged back.
	if _, err := alice.Say(muc, "from xmpp"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Wait(wait, func(l testenv.IRCLine) bool { return l.Command == "PRIVMSG" && l.Text() == "from xmpp" }); err != nil {
		t.Fatalf("IRC: alice's line not seen: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)

	sb.Kill()
	t2 := time.Now()
	sb.Restart()
	if c := catchUp(t2); c.Recovered != 0 {
		t.Errorf("second restart: recovered %d lines, want 0", c.Recovered)
	}
	say("after the second restart")

	echoes := 0
	for _, s := range alice.Stanzas() {
		if s.Kind() == "message" && s.Type() == "groupchat" && s.Body() == "from xmpp" {
			echoes++
		}
	}
	if echoes != 1 {
		t.Errorf("alice's line came back to XMPP: seen %d times, want once (her own)", echoes)
	}
	all := append(append([]string{"linked now"}, want...), "back", "after the second restart")
	for name, got := range map[string][]string{"XMPP": xmppTexts(), "MQTT": mqttTexts} {
		if strings.Join(got, "\n") != strings.Join(all, "\n") {
			t.Errorf("%s saw from carol:\n%s\nwant, each once and in order:\n%s", name, strings.Join(got, "\n"), strings.Join(all, "\n"))
		}
	}
}

// apiStatus reads /api/status.
func apiStatus(t *testing.T, addr string) status.Status {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st status.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/api/status: %v", err)
	}
	return st
}

// TestIRCCatchUpUnderLoad is the measurement: an IRC user says
// 25 lines a second while Switchboard is killed (kill -9) and restarted
// at once, three times; every line reaches MQTT, in order. Repeats are
// counted and logged, not failed: a delivery made just before a kill
// whose record had not reached the disk goes again from the outbox, with
// the same event id (an MQTT consumer can drop it by id).
func TestIRCCatchUpUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts Switchboard under load")
	}
	const (
		channel = "#load"
		root    = "sb/load"
		rate    = 25
		lines   = 300
	)
	irc := testenv.InspIRCd(t)
	broker := testenv.Mosquitto(t)
	bin := buildSwitchboard(t, t.TempDir())
	carol := irc.Client(t, "carol")
	carol.Join(channel)
	carol.Send("MODE", channel, "+H", "100:1d")
	sub := broker.Subscribe(t, root+"/out/#", 1)
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := testenv.WriteFile(t, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
http: { listen: %q }
networks:
  libera: { type: irc, server: %s, nick: switchboard, reconnect_max: 2s, rate: { per_second: 0 } }
  devices: { type: mqtt, broker: %q, client_id: switchboard-load }
links:
  lobby: [ "libera:%s", "devices:%s" ]
`, dir, httpAddr, irc.Addr, broker.URL, channel, root))
	sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: httpAddr}
	sb.Start(t)
	waitUp(t, httpAddr)

	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := 1; i <= lines; i++ {
			<-tick.C
			carol.Conn.Send("PRIVMSG", channel, fmt.Sprintf("load %03d", i))
		}
	}()
	for range 3 {
		time.Sleep(3 * time.Second)
		sb.Kill()
		sb.Restart()
	}
	<-done

	seen := map[int]int{}
	var order []int
	last := fmt.Sprintf("load %03d", lines)
	for {
		m := sub.Next(t, 30*time.Second)
		var ev mqtt.OutEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
		var n int
		if ev.Type != "message" || ev.Sender.Name != "carol" {
			continue
		}
		if _, err := fmt.Sscanf(ev.Text, "load %d", &n); err != nil {
			t.Fatalf("unexpected line %q", ev.Text)
		}
		seen[n]++
		order = append(order, n)
		if ev.Text == last {
			break
		}
	}
	sub.Quiet(t, 2*time.Second)
	lost, repeats, outOfOrder := 0, 0, 0
	for i := 1; i <= lines; i++ {
		if seen[i] == 0 {
			lost++
		}
		repeats += max(seen[i]-1, 0)
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] && seen[order[i]] == 1 {
			outOfOrder++
		}
	}
	t.Logf("%d lines at %d/s, 3 kill -9 restarts: %d lost, %d repeated, %d out of order", lines, rate, lost, repeats, outOfOrder)
	if lost > 0 || outOfOrder > 0 {
		t.Errorf("%d lines lost, %d out of order; want none", lost, outOfOrder)
	}
}

// waitUp waits until every network is up on /api/status.
func waitUp(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := apiStatus(t, addr)
		up := len(st.Networks) > 0
		for _, n := range st.Networks {
			up = up && n.State == "up"
		}
		if up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("networks not up: %+v", st.Networks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
