package irc

import (
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// The one inbox, against InspIRCd with Atheme: a private message to
// alice's nick, which her personal connection holds, is a direct message
// from its writer to her puppet identity on her home (Matrix); notices
// (NickServ's greeting too), CTCP other than ACTION and a services
// nick's messages are not; her answer goes out from her own nick.
func TestPersonalInbox(t *testing.T) {
	s := testenv.Atheme(t)
	s.RegisterAccount(t, "alice", "alice-pw")
	bob := s.IRC.Client(t, "bob")
	serv := s.IRC.Client(t, "FooServ")
	a := startAdapter(t, netConfig(s.IRC, "puppet"), alicePeople("alice-pw"), "#lobby")
	waitStatus(t, a, "connected")

	bob.Notice("alice", "a notice")
	bob.Say("alice", "\x01VERSION\x01")
	serv.Say("alice", "your account expires soon")
	bob.Action("alice", "waves")
	bob.Say("alice", "hi alice")
	hi := a.rec.wait(t, "bob's PM", func(ev bridge.Event) bool { return textOfEvent(ev) == "hi alice" })
	h := hi.Head()
	if h.To == nil || *h.To != (bridge.Sender{Network: "matrix", ID: "person/alice", Person: "alice", Home: "matrix"}) {
		t.Errorf("bob's PM is to %+v, want alice's puppet identity on matrix", h.To)
	}
	if h.Sender.Network != "libera" || h.Sender.ID != "bob" || h.Origin.Room != "" {
		t.Errorf("bob's PM is from %+v in %q, want bob on libera, no room", h.Sender, h.Origin.Room)
	}
	var got []string
	for _, ev := range a.rec.all() {
		if ev.Head().To != nil {
			got = append(got, textOfEvent(ev))
			if m, ok := ev.(*bridge.Message); ok && textOfEvent(ev) == "waves" && !m.Emote {
				t.Errorf("bob's ACTION is not an emote")
			}
		}
	}
	if len(got) != 2 || got[0] != "waves" || got[1] != "hi alice" {
		t.Errorf("direct messages bridged: %q, want only [waves hi alice] (no notice, CTCP or services)", got)
	}

	// Her answer from Matrix, to bob: from her own nick.
	answer := personMessage("hi bob")
	answer.Origin.Room = ""
	answer.To = &bridge.Sender{Network: "libera", ID: "bob"}
	a.send(t, answer, "")
	bob.WaitText(waitFor, "bob", "alice", "hi bob")
}
