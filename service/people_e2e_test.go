package service

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// Issue 21, test 1, through the whole service: alice writes from her
// phone (an MQTT device of hers), and the IRC channel sees it from her
// own nick, logged in to her own account (InspIRCd with Atheme, SASL),
// with her configured name nowhere needed; no puppet of hers ever joins.
// Someone who writes as "alice" from a device that is not hers is an
// ordinary sender, spoken for by a puppet.
func TestPersonSpeaksFromTheirOwnIRCAccount(t *testing.T) {
	bob, broker, _ := aliceWorld(t, "Alice Liddell", "alice-pw")

	dev := broker.Client(t, "")
	testenv.MQTTPublish(t, dev, "chat/lobby/in/alices-phone", 1, false, "hello from my phone")
	if l := bob.WaitText(patience, "#lobby", "", "hello from my phone"); l.Nick() != "alice" {
		t.Errorf("alice's message came from %q, want her own nick alice", l.Nick())
	}
	from := bob.Len()
	bob.Send("WHOIS", "alice")
	l, err := bob.WaitFrom(from, patience, func(l testenv.IRCLine) bool { return l.Command == "330" || l.Command == "318" })
	if err != nil {
		t.Fatal(err)
	}
	if l.Command != "330" || len(l.Params) < 3 || l.Params[2] != "alice" {
		t.Errorf("WHOIS alice: %v, want logged in to account alice", l)
	}

	for _, l := range bob.Lines() {
		if l.Command == "JOIN" && l.Nick() != "alice" && l.Nick() != "switchboard" && l.Nick() != "bob" {
			t.Errorf("%s joined: no puppet speaks for alice", l.Nick())
		}
	}

	// A device that is not hers, claiming her name, gets a puppet of its
	// own: a name is no account.
	testenv.MQTTPublish(t, dev, "chat/lobby/in/not-alice", 1, false, `{"text": "I am alice too", "name": "alice"}`)
	if l := bob.WaitText(patience, "#lobby", "", "I am alice too"); l.Nick() == "alice" {
		t.Errorf("a device that is not alice's spoke from her nick")
	}
}

// Issue 21, test 5, through the whole service: alice's IRC password is
// wrong. Her message goes out through her puppet, nothing is lost, and
// /api/status, /status and the metrics name the failure (never the
// password).
func TestPersonWithAWrongPasswordSpeaksThroughTheirPuppet(t *testing.T) {
	bob, broker, svc := aliceWorld(t, "Alice", "not-her-password")
	var state string
	testwait.For(t, "alice's account marked failed", func() bool {
		for _, n := range getStatus(t, svc).Networks {
			if n.Name == "libera" {
				state = n.People["alice"]
			}
		}
		return strings.HasPrefix(state, "failed: ")
	})
	if strings.Contains(state, "not-her-password") {
		t.Errorf("/api/status shows the password: %q", state)
	}
	dev := broker.Client(t, "")
	testenv.MQTTPublish(t, dev, "chat/lobby/in/alices-phone", 1, false, "through my puppet")
	if l := bob.WaitText(patience, "#lobby", "", "through my puppet"); l.Nick() == "alice" || !strings.HasPrefix(l.Nick(), "Alice") {
		t.Errorf("the message came from %q, want her puppet (Alice[…])", l.Nick())
	}
	_, page := httpGet(t, "http://"+svc.HTTPAddr+"/status")
	if !strings.Contains(page, "alice's own account: <span class=\"person-state\">failed: ") {
		t.Errorf("/status does not show alice's failed account")
	}
	_, metrics := httpGet(t, "http://"+svc.HTTPAddr+"/metrics")
	if !strings.Contains(metrics, `switchboard_personal_accounts{network="libera",state="failed"} 1`) {
		t.Errorf("/metrics has no failed personal account on libera")
	}
}

// aliceWorld starts InspIRCd with Atheme (alice's account, password
// alice-pw), Mosquitto and the service linking #lobby with the devices'
// chat/lobby; alice, named name, has the IRC account with password and
// the device alices-phone, her home. bob is in #lobby.
func aliceWorld(t *testing.T, name, password string) (bob *testenv.IRCClient, broker *testenv.MQTTBroker, svc *Service) {
	t.Helper()
	services := testenv.Atheme(t)
	services.RegisterAccount(t, "alice", "alice-pw")
	broker = testenv.Mosquitto(t)
	bob = services.IRC.Client(t, "bob")
	bob.Join("#lobby")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  libera: { type: irc, server: %q, nick: switchboard, rate: { per_second: 0 } }
  devices: { type: mqtt, broker: %q, client_id: sb-people }
links:
  lobby: [ "libera:#lobby", "devices:chat/lobby" ]
people:
  alice:
    name: %q
    home: devices
    accounts:
      libera: { id: alice, password: %q }
      devices: alices-phone
`, t.TempDir(), services.IRC.Addr, broker.URL, name, password)))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ = runService(t, cfg)
	return bob, broker, svc
}
