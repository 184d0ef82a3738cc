package irc

import (
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A person writing from two accounts has one puppet, named after them
// and their home network.
func TestOnePuppetPerPerson(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	fromMatrix := message("matrix", "@dora:example.org", "Dora", "from matrix")
	fromPhone := message("devices", "doras-phone", "Dora", "from her phone")
	for _, m := range []*bridge.Message{fromMatrix, fromPhone} {
		m.Sender.Person, m.Sender.Home = "dora", "matrix"
	}
	a.send(t, fromMatrix, "#lobby")
	alice.WaitText(waitFor, "#lobby", "Dora[matrix]", "from matrix")
	a.send(t, fromPhone, "#lobby")
	alice.WaitText(waitFor, "#lobby", "Dora[matrix]", "from her phone")
	if n := a.puppetCount(); n != 1 {
		t.Errorf("%d puppets, want one for the person", n)
	}
}
