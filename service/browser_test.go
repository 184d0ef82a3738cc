package service

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pion/turn/v5"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// browserInnerEnv marks the run of TestBrowserChatPage inside its network
// namespace; browserShotsEnv names the directory its screenshots go to.
const (
	browserInnerEnv = "SWITCHBOARD_BROWSER_INNER"
	browserShotsEnv = "SWITCHBOARD_BROWSER_SHOTS"
)

// A real Chromium loads the chat page, joins a room with its WebRTC data
// channel and talks with an IRC user through the whole service. Switchboard,
// InspIRCd and Chromium run in a network namespace with only a loopback
// interface (inLoopbackNamespace).
func TestBrowserChatPage(t *testing.T) {
	inLoopbackNamespace(t, browserScenario, "inspircd")
}

// inLoopbackNamespace runs scenario, a test of the page in a real
// Chromium, in a network namespace with only a loopback interface, so
// that nothing (Chromium's ICE candidates included) can leave the
// machine: the test runs itself again under `unshare -n`, and scenario
// runs in that inner run. need are the programs it needs besides
// chromium. Screenshots go to $SWITCHBOARD_SCREENSHOTS when set (to look
// at the page), else to the test's temp dir (see screenshot).
func inLoopbackNamespace(t *testing.T, scenario func(*testing.T), need ...string) {
	t.Helper()
	if os.Getenv(browserInnerEnv) == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v\n%s", err, out)
		}
		scenario(t)
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	unshare := testenv.Need(t, "unshare")
	for _, p := range append([]string{"ip", "chromium"}, need...) {
		testenv.Need(t, p)
	}
	shots := os.Getenv("SWITCHBOARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "--", os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=170s")
	cmd.Env = append(os.Environ(), browserInnerEnv+"=1", browserShotsEnv+"="+shots)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inside the network namespace: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Skipf("skipped inside the network namespace:\n%s", out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("the inner run did not pass:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if _, path, ok := strings.Cut(line, "screenshot: "); ok {
			t.Logf("screenshot: %s", path)
		}
	}
}

// screenshot saves what the page of ctx shows as name, in the directory
// inLoopbackNamespace chose.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shots := os.Getenv(browserShotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(shots, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// browserScenario runs inside the namespace.
func browserScenario(t *testing.T) {
	chromium := testenv.Need(t, "chromium")
	irc := testenv.InspIRCd(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "http://" + listen
	turnAddr := startTURN(t, "page-user", "turn-pass")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q }
networks:
  libera:
    type: irc
    server: %s
    nick: switchboard
    flood: { burst: 50, interval: 10ms }
    reconnect_max: 2s
  web:
    type: webrtc
    loopback_candidates: true
    interfaces: [lo]
    ice_servers:
      - urls: [ "turn:%s?transport=udp" ]
        username: page-user
        credential: turn-pass
links:
  lobby: [ "libera:%s", "web:lobby" ]
`, t.TempDir(), listen, irc.Addr, turnAddr, room)))
	if err != nil {
		t.Fatal(err)
	}
	stopSwitchboard := runSwitchboard(t, cfg)
	bob := irc.Client(t, "bob")
	bob.Join(room)

	browser := headlessChromium(t, chromium,
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true))
	ctx, cancel := context.WithTimeout(browser, patience)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	shoot := func(name string) { t.Helper(); screenshot(t, ctx, name) }
	// The offers the page posts, to see which candidates it gathered.
	offers := make(chan string, 8)
	err = chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request.Method == "POST" && strings.Contains(e.Request.URL, "/webrtc/") {
			var sdp strings.Builder
			for _, entry := range e.Request.PostDataEntries {
				sdp.Write(entry.Bytes)
			}
			select {
			case offers <- sdp.String():
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Join as alice through the page's form.
	do("loading the page", chromedp.Navigate(base+"/chat/lobby"), chromedp.WaitVisible(chromedp.ID("name")))
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("room").value`)); err != nil || v != "lobby" {
		t.Errorf("room field %q, %v; want lobby from the URL", v, err)
	}
	do("typing the name", chromedp.SendKeys(chromedp.ID("name"), "alice"))
	shoot("join.png")
	do("joining",
		chromedp.Click(chromedp.ID("join-button")),
		chromedp.WaitVisible(chromedp.ID("text")),
	)

	// The page gathered with the TURN server Switchboard named: its offer
	// carries a relayed candidate.
	select {
	case offer := <-offers:
		if !strings.Contains(offer, "typ relay") {
			t.Errorf("the page's offer has no relayed candidate from the configured TURN server:\n%s", offer)
		}
	case <-ctx.Done():
		t.Error("no offer posted")
	}

	// What alice types reaches IRC from her puppet, and shows as her own.
	do("sending",
		chromedp.SendKeys(chromedp.ID("text"), "hello from the browser"),
		chromedp.Click(chromedp.ID("send-button")),
	)
	bob.WaitText(patience, room, "alice[web]", "hello from the browser")
	mine := waitMessage(t, ctx, "hello from the browser")
	if mine.Who != "alice" || mine.Badge != "web" || !mine.Mine {
		t.Errorf("own message shown as %+v", mine)
	}

	// What bob says on IRC shows in the page, with his name and network.
	bob.Say(room, "hello browser")
	got := waitMessage(t, ctx, "hello browser")
	if got.Who != "bob" || got.Badge != "libera" || got.Mine {
		t.Errorf("IRC message shown as %+v", got)
	}

	// A reply quotes what it answers, on IRC too.
	do("replying",
		chromedp.Evaluate[chromedp.Void](`(() => {
			const li = [...document.querySelectorAll("#messages li.msg")].find((li) => li.querySelector(".body").textContent === "hello browser");
			li.querySelector(".tools button").click();
		})()`),
		chromedp.WaitVisible(chromedp.ID("replying")),
		chromedp.SendKeys(chromedp.ID("text"), "nice to meet you"),
		chromedp.Click(chromedp.ID("send-button")),
	)
	reply := waitMessage(t, ctx, "nice to meet you")
	if !strings.Contains(reply.Quote, "bob") || !strings.Contains(reply.Quote, "hello browser") {
		t.Errorf("reply shown as %+v", reply)
	}
	bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return l.Nick() == "alice[web]" && strings.Contains(l.Text(), "nice to meet you")
	})
	bob.Say(room, "see you around")
	waitMessage(t, ctx, "see you around")

	// Editing her first message: the send box takes its text, and what
	// she sends replaces it, on the page and (as a correction) on IRC.
	do("editing", tool("hello from the browser", "Edit"))
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("text").value + "|" + document.getElementById("replying-text").textContent`)); err != nil || v != "hello from the browser|Editing your message" {
		t.Errorf("send box while editing: %q, %v", v, err)
	}
	do("sending the edit",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("text").value = ""`),
		chromedp.SendKeys(chromedp.ID("text"), "hello from the browser, corrected"),
		chromedp.Click(chromedp.ID("send-button")),
	)
	waitShown(t, ctx, "hello from the browser, corrected", "edited")
	bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return l.Nick() == "alice[web]" && strings.Contains(l.Text(), "hello from the browser, corrected")
	})

	// Deleting asks once more on the button, then the message is gone.
	do("deleting", tool("nice to meet you", "Delete"), tool("nice to meet you", "Delete?"))
	waitShown(t, ctx, "(deleted)", "deleted")

	// Switchboard restarts: the page reconnects by itself and the chat
	// goes on both ways.
	stopSwitchboard()
	runSwitchboard(t, cfg)
	waitShown(t, ctx, "Reconnected to lobby", "note")
	bob.Say(room, "still there?")
	waitMessage(t, ctx, "still there?")
	do("sending after the restart",
		chromedp.SendKeys(chromedp.ID("text"), "yes, back"),
		chromedp.Click(chromedp.ID("send-button")),
	)
	bob.WaitText(patience, room, "alice[web]", "yes, back")

	// Screenshots: the join form, then a desktop window and a phone.
	shoot("desktop.png")
	do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	shoot("phone.png")
}

// tool clicks the tool button labelled label of the message showing text
// (the tools show on hover or focus; a click works either way).
func tool(text, label string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll("#messages li.msg")].find((li) => li.querySelector(".body").textContent === %q);
		[...li.querySelectorAll(".tools button")].find((b) => b.textContent === %q).click();
	})()`, text, label))
}

// waitShown waits for a list item of the page with this text and class.
func waitShown(t *testing.T, ctx context.Context, text, class string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`[...document.querySelectorAll("#messages li.%s")].some((li) => li.textContent.includes(%q))`, class, text), chromedp.WithPollingTimeout(patience)))
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("messages").outerHTML`))
		t.Fatalf("the page never showed %q as %s: %v\n%s", text, class, err, html)
	}
}

// shownMessage is a message as the page shows it.
type shownMessage struct {
	Who   string `json:"who"`
	Badge string `json:"badge"`
	Quote string `json:"quote"`
	Mine  bool   `json:"mine"`
}

// waitMessage waits for the page to show a message with this text.
func waitMessage(t *testing.T, ctx context.Context, text string) shownMessage {
	t.Helper()
	m, err := chromedp.Run(ctx, chromedp.Poll[shownMessage](fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll("#messages li.msg")].find((li) => {
			const b = li.querySelector(".body");
			return b && b.textContent === %q && li.offsetParent !== null;
		});
		if (!li) return null;
		const q = li.querySelector(".quote");
		return { who: li.querySelector(".who").textContent, badge: li.querySelector(".badge").textContent,
			quote: q ? q.textContent : "", mine: li.classList.contains("mine") };
	})()`, text), chromedp.WithPollingTimeout(patience)))
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		t.Fatalf("the page shows no message %q: %v\n%s", text, err, html)
	}
	return m
}

// startTURN runs a TURN server on 127.0.0.1 that lets user in, and
// returns its address.
func startTURN(t *testing.T, user, password string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "switchboard.test",
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != user {
				return "", nil, false
			}
			return user, turn.GenerateAuthKey(user, ra.Realm, password), true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return pc.LocalAddr().String()
}
