package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 25, tests 1 and 4 on XMPP: the binary is killed with kill -9
// while an XMPP user goes on talking in the MUC (Prosody with muc_mam);
// back, Switchboard reads the room's archive and every line reaches IRC
// once, in order; a second crash and restart repeat none of them; what
// was said before the room was linked is never bridged.
func TestXMPPCatchUpAfterKill(t *testing.T) {
	bin := buildSwitchboard(t, t.TempDir())
	for _, server := range []struct {
		name  string
		start func(testing.TB, testenv.XMPPServerConfig) *testenv.XMPPServer
	}{{"prosody", testenv.ProsodyWith}, {"ejabberd", testenv.EjabberdWith}} {
		t.Run(server.name, func(t *testing.T) { xmppCatchUpAfterKill(t, bin, server.start) })
	}
}

func xmppCatchUpAfterKill(t *testing.T, bin string, server func(testing.TB, testenv.XMPPServerConfig) *testenv.XMPPServer) {
	const patience = 30 * time.Second
	irc := testenv.InspIRCd(t)
	xs := server(t, testenv.XMPPServerConfig{Users: map[string]string{"alice": "alice-pw"}})
	muc := xs.Room("lobby")
	// The component connects through a proxy that drops it, while cut,
	// at the first thing Prosody sends: a reconnect, not a restart.
	var cut atomic.Bool
	proxy := testenv.NewDropProxy(t, xs.ComponentAddr, func([]byte) bool { return cut.Load() })
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := testenv.WriteFile(t, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
http: { listen: %q }
networks:
  libera: { type: irc, server: %q, nick: switchboard, mode: relay, flood: { burst: 50, interval: 10ms } }
  jabber: { type: xmpp, server: %q, component: { domain: %q, secret: %q } }
links:
  lobby: [ "libera:#lobby", "jabber:%s" ]
`, dir, httpAddr, irc.Addr, proxy.Addr, xs.Component, xs.ComponentSecret, muc))
	sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: httpAddr}

	alice := xs.Client(t, "alice", "alice-pw")
	if err := alice.Join(muc, "alice"); err != nil {
		t.Fatal(err)
	}
	say := func(text string) {
		t.Helper()
		if _, err := alice.Say(muc, text); err != nil {
			t.Fatal(err)
		}
		alice.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && s.From() == muc.String()+"/alice" && s.Body() == text
		})
	}
	for i := range 3 {
		say(fmt.Sprintf("before the link %d", i))
	}
	bob := irc.Client(t, "bob")
	bob.Join("#lobby")
	// seen waits for a line with text on IRC, said again until it comes
	// while Switchboard is still joining.
	seen := func(text string) {
		t.Helper()
		bob.WaitMessage(patience, func(l testenv.IRCLine) bool { return strings.Contains(l.Text(), text) })
	}
	var status func() (int, time.Time, bool)
	lines := func(prefix string) []string {
		var out []string
		for _, l := range bob.Messages(func(l testenv.IRCLine) bool { return strings.EqualFold(l.Target(), "#lobby") }) {
			if i := strings.Index(l.Text(), prefix); i >= 0 {
				out = append(out, l.Text()[i:])
			}
		}
		return out
	}
	// catchUp is the MUC's latest catch-up on /api/status, once it is
	// later than since.
	catchUp := func(since time.Time) (recovered int, ok bool) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for {
			n, at, ok := status()
			if ok && at.After(since) {
				return n, true
			}
			if time.Now().After(deadline) {
				return 0, false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	status = func() (recovered int, at time.Time, ok bool) {
		t.Helper()
		for _, l := range apiStatus(t, httpAddr).Links {
			for _, rm := range l.Rooms {
				if rm.Room == "jabber:"+muc.String() && rm.CatchUp != nil {
					return rm.CatchUp.Recovered, rm.CatchUp.At, true
				}
			}
		}
		return 0, time.Time{}, false
	}

	sb.Start(t)
	live := func(text string) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for {
			say(text)
			if _, err := bob.Wait(2*time.Second, func(l testenv.IRCLine) bool { return strings.Contains(l.Text(), text) }); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q never reached IRC", text)
			}
		}
	}
	live("first live line")

	// kill waits for Switchboard to have the line it bridged last on disk
	// (the store's sync window) and its position in the room written
	// (0.2 s later), then kills it: a crash inside that window is issue
	// 25's test 3, exactly once across a crash, not catch-up's.
	kill := func() {
		time.Sleep(1500 * time.Millisecond)
		sb.Kill()
	}
	kill()
	var want []string
	for i := 1; i <= 15; i++ {
		want = append(want, fmt.Sprintf("missed %02d", i))
		say(want[len(want)-1])
	}
	restarted := time.Now()
	sb.Start(t)
	// Nothing is said from now on until the catch-up is done: a line
	// said before Switchboard is back in the room is one it catches up
	// on.
	seen("missed 15")
	t.Logf("15 missed lines on IRC %v after the restart", time.Since(restarted).Round(time.Millisecond))
	if n, ok := catchUp(restarted); !ok || n != 15 {
		t.Errorf("/api/status catch_up of the MUC: recovered %d (present %v), want 15", n, ok)
	}
	live("after the restart")
	if got := lines("missed "); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("missed lines on IRC:\n%q\nwant each once, in order:\n%q", got, want)
	}

	// A second crash and restart: nothing again.
	kill()
	restarted = time.Now()
	sb.Start(t)
	if n, ok := catchUp(restarted); !ok || n != 0 {
		t.Errorf("/api/status catch_up after the second restart: recovered %d (present %v), want 0", n, ok)
	}
	live("after the second restart")
	if got := lines("missed "); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after a second restart, missed lines on IRC:\n%q\nwant each once, in order:\n%q", got, want)
	}
	for _, text := range []string{"first live line", "after the restart"} {
		if n := len(lines(text)); n != 1 {
			t.Errorf("%q reached IRC %d times, want once", text, n)
		}
	}
	if got := lines("before the link"); len(got) > 0 {
		t.Errorf("what was said before the room was linked was bridged: %q", got)
	}

	// The connection to Prosody drops at a line (bridged or not as it
	// falls) and stays down while alice says 5 more; back, each of them
	// reaches IRC once, in order, the one it dropped at too.
	cutAt := time.Now()
	cut.Store(true)
	say("the line it drops at")
	deadline := time.Now().Add(patience)
	for xmppUp(t, httpAddr) {
		if time.Now().After(deadline) {
			t.Fatal("the XMPP connection never went down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var cutWant []string
	for i := 1; i <= 5; i++ {
		cutWant = append(cutWant, fmt.Sprintf("while cut %d", i))
		say(cutWant[len(cutWant)-1])
	}
	cut.Store(false)
	seen("while cut 5")
	n, ok := catchUp(cutAt)
	live("after the reconnect")
	if got := lines("while cut "); strings.Join(got, "|") != strings.Join(cutWant, "|") {
		t.Errorf("lines said while the connection was down, on IRC:\n%q\nwant each once, in order:\n%q", got, cutWant)
	}
	if n := len(lines("the line it drops at")); n != 1 {
		t.Errorf("the line the connection dropped at reached IRC %d times, want once", n)
	}
	if !ok || n < 5 || n > 6 {
		t.Errorf("/api/status catch_up after the reconnect: recovered %d (present %v), want 5 (6 with the line it dropped at)", n, ok)
	}

	// catch_up.max_messages caps a catch-up at the latest lines.
	sb.Stop()
	capped, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	capped = []byte(strings.Replace(string(capped), "secret: "+strconv.Quote(xs.ComponentSecret)+" }",
		"secret: "+strconv.Quote(xs.ComponentSecret)+" }, catch_up: { max_messages: 3 }", 1))
	if err := os.WriteFile(conf, capped, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		say(fmt.Sprintf("over the cap %d", i))
	}
	restarted = time.Now()
	sb.Start(t)
	if n, ok := catchUp(restarted); !ok || n != 3 {
		t.Errorf("/api/status catch_up with max_messages 3: recovered %d (present %v), want 3", n, ok)
	}
	live("after the capped catch-up")
	if got, want := lines("over the cap "), []string{"over the cap 3", "over the cap 4", "over the cap 5"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("with max_messages 3, on IRC:\n%q\nwant the latest 3, in order:\n%q", got, want)
	}
	sb.Stop()
}

// xmppUp reports whether /api/status shows the jabber network up.
func xmppUp(t *testing.T, httpAddr string) bool {
	t.Helper()
	for _, n := range apiStatus(t, httpAddr).Networks {
		if n.Name == "jabber" {
			return n.State == "up"
		}
	}
	return false
}
