package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// The matterbridge benchmarks run a relay benchmark's traffic through
// matterbridge instead of switchboard, for a comparison on the same
// machine in the same hour: the figures the issues hold switchboard to
// were measured on matterbridge, and this VM's speed drifts by a third
// between days. They run only when SWITCHBOARD_BENCH_MATTERBRIDGE names a
// matterbridge binary (built from github.com/42wim/matterbridge v1.26.0;
// see README), and count the messages matterbridge reorders instead of
// failing on them.

// BenchmarkMatterbridgeIRCToXMPP is BenchmarkRelayIRCToXMPP's traffic.
func BenchmarkMatterbridgeIRCToXMPP(b *testing.B) {
	r, send := matterbridgeIRCToXMPP(b)
	r.run(200, send)
}

// BenchmarkMatterbridgeBurstIRCToXMPP is BenchmarkBurstIRCToXMPP's.
func BenchmarkMatterbridgeBurstIRCToXMPP(b *testing.B) {
	r, send := matterbridgeIRCToXMPP(b)
	r.burst(send)
}

func matterbridgeIRCToXMPP(b *testing.B) (*relay, func(text string)) {
	bin := matterbridgeBin(b)
	irc, xmpp := testenv.InspIRCd(b), testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw", "mbbot": "pw"}})
	r := startMatterbridge(b, bin, fmt.Sprintf(`
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

	muc := xmpp.Room("bench")
	alice := xmpp.Client(b, "alice", "pw")
	if err := alice.Join(muc, "alice"); err != nil {
		b.Fatal(err)
	}
	warm := make(chan struct{}, 1)
	r.watchRoom(alice, func(body string) { pinged(warm, body) })
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	send := func(text string) { bob.Say("#bench", text) }
	waitRelaying(b, warm, send)
	return r, send
}

// matterbridgeBin is SWITCHBOARD_BENCH_MATTERBRIDGE; the benchmark is
// skipped without it.
func matterbridgeBin(b *testing.B) string {
	bin := os.Getenv("SWITCHBOARD_BENCH_MATTERBRIDGE")
	if bin == "" {
		b.Skip("SWITCHBOARD_BENCH_MATTERBRIDGE not set")
	}
	return bin
}

// startMatterbridge starts matterbridge with a config (TOML) and measures
// what it relays.
func startMatterbridge(b *testing.B, bin, conf string) *relay {
	dir := b.TempDir()
	mb := &testenv.Process{Name: bin, Args: []string{"-conf", testenv.WriteFile(b, dir, "matterbridge.toml", conf)}, Dir: dir}
	mb.Start(b)
	r := newRelay(b, mb)
	r.measureDisorder = true
	return r
}

// pinged signals warm when a relayed text is a "ping" of waitRelaying.
func pinged(warm chan<- struct{}, text string) {
	if strings.HasPrefix(text, "ping") {
		select {
		case warm <- struct{}{}:
		default:
		}
	}
}

// waitRelaying sends "ping" until one comes through (warm): matterbridge
// joins its rooms some time after it starts, and has no port to say when.
func waitRelaying(b *testing.B, warm <-chan struct{}, send func(text string)) {
	for deadline := time.Now().Add(60 * time.Second); ; {
		send("ping")
		select {
		case <-warm:
			return
		case <-time.After(time.Second):
			if time.Now().After(deadline) {
				b.Fatal("matterbridge relays nothing")
			}
		}
	}
}
