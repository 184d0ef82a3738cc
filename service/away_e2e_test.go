package service

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 22, item 3, through the whole service on InspIRCd with Atheme:
// alice's home is her phone (MQTT). While she uses it her own IRC
// connection is not away; after away_after (2s here) without a word from
// it, WHOIS shows her away (301) with her message; her next message from
// home brings her back.
func TestPersonalIRCConnectionAwayWhileIdleAtHome(t *testing.T) {
	const after = 2 * time.Second
	bob, broker, _ := aliceWorld(t, "Alice", "alice-pw", "    away_after: 2s", "    away_message: Away from her phone")
	dev := broker.Client(t, "")
	// say returns when she spoke: idle time counts from there, not from
	// when IRC shows it (InspIRCd may hold her lines for up to a second
	// after an AWAY).
	say := func(text string) time.Time {
		t.Helper()
		spoke := time.Now()
		testenv.MQTTPublish(t, dev, "chat/lobby/in/alices-phone", 1, false, text)
		if l := bob.WaitText(patience, "#lobby", "", text); l.Nick() != "alice" {
			t.Fatalf("%q came from %q, want her own nick alice", text, l.Nick())
		}
		return spoke
	}
	// whois is alice's away message in WHOIS as bob sees it, "" for none.
	whois := func() (string, bool) {
		t.Helper()
		from := bob.Len()
		bob.Send("WHOIS", "alice")
		l, err := bob.WaitFrom(from, patience, func(l testenv.IRCLine) bool { return l.Command == "301" || l.Command == "318" })
		if err != nil {
			t.Fatal(err)
		}
		return l.Text(), l.Command == "301"
	}
	// awaitAway waits until WHOIS says she is away (or back), for up to
	// within, and returns when it did.
	awaitAway := func(want bool, within time.Duration) (string, time.Time) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			msg, away := whois()
			if away == want {
				return msg, time.Now()
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v WHOIS alice says away=%v (%q), want %v", within, away, msg, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	spoke := say("hello from my phone")
	awaitAway(false, time.Second)
	msg, at := awaitAway(true, after+5*time.Second)
	if msg != "Away from her phone" {
		t.Errorf("her away message is %q, want %q", msg, "Away from her phone")
	}
	if idle := at.Sub(spoke); idle < after-200*time.Millisecond {
		t.Errorf("away %v after her message, before away_after %v", idle, after)
	} else {
		t.Logf("away %v after her last message at home (away_after %v)", idle.Round(10*time.Millisecond), after)
	}

	spoke = say("back at my phone")
	_, back := awaitAway(false, time.Second)
	t.Logf("back (WHOIS) %v after her next message", back.Sub(spoke).Round(time.Millisecond))
	// And away again only after another idle spell.
	if msg, away := whois(); away {
		t.Errorf("away again at once: %q", msg)
	}
	awaitAway(true, after+5*time.Second)
}
