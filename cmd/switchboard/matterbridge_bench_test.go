package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/id"

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
`+benchGateway("xmpp.jabber", "bench"), irc.Addr, xmpp.C2SAddr, xmpp.Domain, xmpp.MUC))

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
// benchGateway is the matterbridge gateway joining #bench on irc.libera
// with channel on account.
func benchGateway(account, channel string) string {
	return fmt.Sprintf(`
[[gateway]]
name = "bench"
enable = true
[[gateway.inout]]
account = "irc.libera"
channel = "#bench"
[[gateway.inout]]
account = %q
channel = %q
`, account, channel)
}

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

// BenchmarkMatterbridgeIRCToMatrix is BenchmarkRelayIRCToMatrix's
// traffic, matterbridge logged in to Dendrite as a Matrix user.
func BenchmarkMatterbridgeIRCToMatrix(b *testing.B) {
	atMatrixRates(b, func(b *testing.B, rate int) {
		r, bob, alice, _ := matterbridgeMatrix(b)
		warm := make(chan struct{}, 1)
		r.watchMatrix(alice, nil, func(body string) { pinged(warm, body) })
		send := func(text string) { bob.Say("#bench", text) }
		waitRelaying(b, warm, send)
		r.run(rate, send)
	})
}

// BenchmarkMatterbridgeMatrixToIRC is BenchmarkRelayMatrixToIRC's.
func BenchmarkMatterbridgeMatrixToIRC(b *testing.B) {
	atMatrixRates(b, func(b *testing.B, rate int) {
		r, bob, alice, room := matterbridgeMatrix(b)
		warm := make(chan struct{}, 1)
		bob.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) {
			pinged(warm, m.Params[1])
			r.saw(m.Params[1])
		})
		send := func(text string) { alice.Text(room, text) }
		waitRelaying(b, warm, send)
		r.run(rate, send)
	})
}

// matterbridgeMatrix starts InspIRCd, Dendrite, alice in a public room
// and matterbridge (a Matrix user of its own) linking it with #bench,
// where bob is; Dendrite's CPU and matterbridge's requests to it are
// measured as for switchboard.
func matterbridgeMatrix(b *testing.B) (*relay, *testenv.IRCClient, *testenv.MatrixClient, id.RoomID) {
	bin := matterbridgeBin(b)
	irc, hs := testenv.InspIRCd(b), testenv.Dendrite(b, nil)
	asks := testenv.NewCountingProxy(b, hs.URL)
	hs.Register(b, "mbbot", "mbbot-password")
	alice := hs.Client(b, "alice")
	room := alice.NewRoom(true, "")
	// Its IRC side sends a line every MessageDelay ms (1,300 by default)
	// and drops what is beyond MessageQueue (30): both out of the way, as
	// switchboard's flood control is in its benchmarks.
	r := startMatterbridge(b, bin, fmt.Sprintf(`
[irc.libera]
Server = "%s"
Nick = "mbbot"
RemoteNickFormat = ""
MessageDelay = 1
MessageQueue = 100000

[matrix.mx]
Server = "%s"
Login = "mbbot"
Password = "mbbot-password"
RemoteNickFormat = ""
`+benchGateway("matrix.mx", string(room)), irc.Addr, asks.URL))
	r.counted = map[string]*testenv.CountingProxy{"hs-req": asks}
	r.homeserver = hs.Process
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	return r, bob, alice, room
}
