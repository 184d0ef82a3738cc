package irc

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Cluster mode (adapters.Fenced): once the fence says this instance no
// longer holds the network, nothing more is said on it, by the bot or a
// puppet, each connection that tries is closed, and the bot does not
// connect again until the fence allows it.
func TestFenceSilencesBotAndPuppets(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	// Every connection of the adapter goes through p, which counts them.
	p := testenv.NewDropProxy(t, srv.Addr, func([]byte) bool { return false })
	via := *srv
	via.Addr = p.Addr
	n := netConfig(&via, "puppet")
	n.Section.(*Config).ReconnectMax = 2 * time.Second
	var may atomic.Bool
	may.Store(true)
	a := startAdapter(t, n, func(a *Adapter) { a.UseFence(may.Load) }, "#lobby")

	a.send(t, message("matrix", "@ann:hs", "ann", "one"), "#lobby")
	first := alice.WaitText(waitFor, "#lobby", "", "one")
	puppet := first.Nick()
	if strings.EqualFold(puppet, "bridge") {
		t.Fatalf("the bot said it, not ann's puppet")
	}

	may.Store(false)
	mark := alice.Len()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Send(ctx, delivery(message("matrix", "@ann:hs", "ann", "two"), "#lobby")); err == nil {
		t.Error("a message sent by a fenced puppet was confirmed")
	}
	if err := a.SendAsBot(ctx, "#lobby", "", "three"); err == nil {
		t.Error("a notice sent by a fenced bot was confirmed")
	}
	// Their connections were closed on the refused writes: the server
	// tells the channel both quit.
	for _, nick := range []string{puppet, "bridge"} {
		if _, err := alice.WaitFrom(mark, 5*time.Second, func(l testenv.IRCLine) bool {
			return l.Command == "QUIT" && strings.EqualFold(l.Nick(), nick)
		}); err != nil {
			t.Fatalf("%s did not quit once fenced: %v", nick, err)
		}
	}
	// Two quiet seconds: nothing said and no one back; the reconnect
	// loop's attempts (at 1 and 2 s) are refused before dialing.
	dialed := p.Accepted()
	time.Sleep(2 * time.Second)
	if d := p.Accepted() - dialed; d != 0 {
		t.Errorf("a fenced adapter opened %d connections", d)
	}
	for _, l := range alice.Lines()[mark:] {
		switch l.Command {
		case "PRIVMSG", "NOTICE", "JOIN", "NICK":
			t.Errorf("alice saw %q after the fence closed", l.Raw)
		}
	}
	if a.Connected() {
		t.Error("adapter reports connected while fenced")
	}

	// Holding the network again: the bot connects again and messages
	// flow, from a new puppet.
	may.Store(true)
	if _, err := alice.WaitFrom(mark, 10*time.Second, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && strings.EqualFold(l.Nick(), "bridge")
	}); err != nil {
		t.Fatalf("the bot did not come back: %v", err)
	}
	a.send(t, message("matrix", "@ann:hs", "ann", "four"), "#lobby")
	four := alice.WaitText(waitFor, "#lobby", "", "four")
	if got := four.Nick(); !strings.EqualFold(got, puppet) {
		t.Errorf("four said by %s, want ann's puppet %s", got, puppet)
	}
	for _, l := range alice.Messages(nil) {
		if l.Text() == "two" || strings.Contains(l.Text(), "three") {
			t.Errorf("alice saw a fenced line: %q", l.Raw)
		}
	}
	// Lost again: the service stops the adapter.
	may.Store(false)
	adapterstest.StopsFenced(t, a)
}
