package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkMatterbridgeIRCToXMPP runs BenchmarkRelayIRCToXMPP's traffic
// through matterbridge instead of switchboard, for a comparison on the
// same machine in the same hour: the figures the issues hold
// switchboard to were measured on matterbridge, and this VM's speed
// drifts by a third between days. It runs only when
// SWITCHBOARD_BENCH_MATTERBRIDGE names a matterbridge binary (built from
// github.com/42wim/matterbridge v1.26.0; see README).
func BenchmarkMatterbridgeIRCToXMPP(b *testing.B) {
	bin := os.Getenv("SWITCHBOARD_BENCH_MATTERBRIDGE")
	if bin == "" {
		b.Skip("SWITCHBOARD_BENCH_MATTERBRIDGE not set")
	}
	irc, xmpp := testenv.InspIRCd(b), testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw", "mbbot": "pw"}})
	dir := b.TempDir()
	conf := testenv.WriteFile(b, dir, "matterbridge.toml", fmt.Sprintf(`
[irc.libera]
Server = "%s"
Nick = "mbbot"
RemoteNickFormat = ""

[xmpp.jabber]
Server = "%s"
Jid = "mbbot@%s"
Password = "pw"
Muc = "%s"
Nick = "mbbot"
NoTLS = true
RemoteNickFormat = ""

[[gateway]]
name = "bench"
enable = true
[[gateway.inout]]
account = "irc.libera"
channel = "#bench"
[[gateway.inout]]
account = "xmpp.jabber"
channel = "bench"
`, irc.Addr, xmpp.C2SAddr, xmpp.Domain, xmpp.MUC))
	mb := &testenv.Process{Name: bin, Args: []string{"-conf", conf}, Dir: dir}
	mb.Start(b)
	r := &relay{b: b, sb: mb, received: map[int]time.Time{}, got: make(chan struct{}, 1), measureDisorder: true}

	muc := xmpp.Room("bench")
	alice := xmpp.Client(b, "alice", "pw")
	if err := alice.Join(muc, "alice"); err != nil {
		b.Fatal(err)
	}
	warm := make(chan struct{}, 1)
	r.watchRoom(alice, func(body string) {
		if strings.HasPrefix(body, "ping") {
			select {
			case warm <- struct{}{}:
			default:
			}
		}
	})
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	// matterbridge joins its rooms some time after it starts, and has no
	// port to say when: ping until a line comes through.
	for deadline := time.Now().Add(60 * time.Second); ; {
		bob.Say("#bench", "ping")
		select {
		case <-warm:
		case <-time.After(time.Second):
			if time.Now().After(deadline) {
				b.Fatal("matterbridge relays nothing")
			}
			continue
		}
		break
	}
	r.run(200, func(text string) { bob.Say("#bench", text) })
}
