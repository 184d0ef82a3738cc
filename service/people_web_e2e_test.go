package service

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// alicePageToken is alice's personal token for the web chat page.
const alicePageToken = "alice-page-t0ken-7f3e"

// Issue 21, test 8, through the whole service, a real Chromium and
// InspIRCd with Atheme: alice types her personal token in the page's
// join form; the page shows her as alice, verified, and what she types
// reaches the IRC channel from her own nick, logged in to her account,
// with no puppet of hers. A wrong token is refused in words the page
// shows, and lets nobody in. Someone who types the name alice without
// her token is shown unverified and reaches IRC through a puppet.
func TestPersonOnTheWebPage(t *testing.T) {
	inLoopbackNamespace(t, personOnTheWebPage, "inspircd", "/usr/bin/atheme-services")
}

func personOnTheWebPage(t *testing.T) {
	chromium, bob, listen, cfg := aliceOnTheWeb(t)
	runSwitchboard(t, cfg)

	page := loopbackPage(t, chromium)

	// alice opens the room's page and types her token in the form, as
	// docs/people.md tells her; she leaves the name empty.
	page.open("http://" + listen + "/chat/lobby")
	page.do("typing her token", chromedp.SendKeys(chromedp.ID("person-token"), alicePageToken))
	page.shoot("person-join.png")
	page.join()
	if s := page.text("#status"); s != "connected as alice ✓ verified" {
		t.Errorf("her page's status says %q, want connected as alice ✓ verified", s)
	}
	page.do("sending", chromedp.SendKeys(chromedp.ID("text"), "it's me, from the web"), chromedp.Click(chromedp.ID("send-button")))
	if m := page.message("it's me, from the web"); m.Who != "alice" || !m.Verified || m.Unverified || !m.Mine {
		t.Errorf("her own message shown as %+v, want hers, from alice, verified", m)
	}
	page.shoot("person-verified.png")

	// IRC sees it from her own nick, logged in to her account.
	l := bob.WaitText(patience, "#lobby", "", "it's me, from the web")
	if l.Nick() != "alice" {
		t.Errorf("IRC shows her message from %q, want her own nick alice", l.Nick())
	}
	if ok, acct := l.GetTag("account"); !ok || acct != "alice" {
		t.Errorf("her message's account tag: %q (present %v), want alice", acct, ok)
	}
	wantLoggedIn(t, bob, "alice", "alice")
	// And what bob answers shows on her page.
	bob.Say("#lobby", "hi alice")
	if m := page.message("hi alice"); m.Who != "bob" || m.Verified || m.Unverified || m.Mine {
		t.Errorf("bob's message shown on her page as %+v", m)
	}

	// Someone else tries with a wrong token: the page tells them so, and
	// nobody joins, on the page or on IRC.
	intruder := page.tab()
	intruder.open("http://" + listen + "/chat/lobby")
	ircFrom := bob.Len()
	intruder.do("typing a wrong token", chromedp.SendKeys(chromedp.ID("person-token"), "alice-page-t0ken-7f3f"))
	intruder.do("joining", chromedp.Click(chromedp.ID("join-button")))
	refusal := intruder.waitText("#join-error", func(s string) bool { return s != "" })
	if refusal != "Your personal token was not accepted: check it, or join without it." {
		t.Errorf("the page refuses a wrong token with %q", refusal)
	}
	if intruder.visible("#chat") {
		t.Errorf("the chat shows after a refused token")
	}
	if v, err := chromedp.Run(intruder.ctx, chromedp.Evaluate[string](`(() => { const f = document.getElementById("person-token");
		return f.getAttribute("aria-invalid") + "," + (document.activeElement === f); })()`)); err != nil || v != "true,true" {
		t.Errorf("the token field after its refusal: invalid and focused %q, %v; want true,true", v, err)
	}
	intruder.shoot("person-refused.png")

	// Without a token, the same visitor types the name alice: the pages
	// show them "not verified" (a name alice was verified under), and IRC
	// gets their words from a puppet.
	intruder.do("clearing the token", chromedp.Evaluate[chromedp.Void](`document.getElementById("person-token").value = ""`))
	intruder.do("typing her name", chromedp.SendKeys(chromedp.ID("name"), "alice"))
	intruder.join()
	if s := intruder.text("#status"); s != "connected as alice" {
		t.Errorf("the visitor's status says %q, want connected as alice, not verified", s)
	}
	intruder.do("sending", chromedp.SendKeys(chromedp.ID("text"), "I am alice too"), chromedp.Click(chromedp.ID("send-button")))
	if m := intruder.message("I am alice too"); m.Who != "alice" || m.Verified || !m.Unverified || !m.Mine {
		t.Errorf("the visitor's own message shown as %+v, want theirs, not verified", m)
	}
	if m := page.message("I am alice too"); m.Who != "alice" || m.Verified || !m.Unverified || m.Mine {
		t.Errorf("the visitor's message shown on alice's page as %+v, want not hers, not verified", m)
	}
	waitShown(t, page.ctx, "alice (not verified) joined (web)", "note")
	// The refused token let no one in: the visitor's is the only join
	// alice's page saw.
	if joins, err := chromedp.Run(page.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#messages li.note")].map((li) => li.textContent).filter((s) => s.includes(" joined") && !s.startsWith("You "))`)); err != nil || len(joins) != 1 {
		t.Errorf("alice's page saw joins %q (%v); want only the visitor's", joins, err)
	}
	page.shoot("person-and-visitor.png")
	if l := bob.WaitText(patience, "#lobby", "", "I am alice too"); l.Nick() == "alice" || !strings.HasPrefix(l.Nick(), "alice[") {
		t.Errorf("IRC shows the visitor's message from %q, want a puppet (alice[…]), never alice", l.Nick())
	} else if ok, acct := l.GetTag("account"); ok {
		t.Errorf("the visitor's puppet is logged in to account %q", acct)
	}

	// Until the visitor joined, only alice, bob and the bot had joined
	// #lobby, and nothing but what alice and bob wrote was said there.
	time.Sleep(time.Second)
	for i, l := range bob.Lines() {
		visitor := strings.HasPrefix(l.Nick(), "alice[") && l.Text() == "I am alice too"
		switch {
		case l.Command == "JOIN" && l.Nick() != "alice" && l.Nick() != "switchboard" && l.Nick() != "bob" && !strings.HasPrefix(l.Nick(), "alice["):
			t.Errorf("IRC: %s joined", l.Nick())
		case l.Command == "JOIN" && strings.HasPrefix(l.Nick(), "alice[") && i < ircFrom:
			t.Errorf("IRC: a puppet of alice, %s, joined while she spoke as herself", l.Nick())
		case l.Command == "PRIVMSG" && l.Target() == "#lobby" && !visitor && l.Text() != "it's me, from the web" && l.Nick() != "bob":
			t.Errorf("IRC: unexpected message %q from %s", l.Text(), l.Nick())
		case l.Command == "PRIVMSG" && l.Nick() == "alice" && l.Text() != "it's me, from the web":
			t.Errorf("IRC: alice said %q", l.Text())
		}
	}
	if n := len(bob.Messages(func(l testenv.IRCLine) bool { return l.Text() == "it's me, from the web" })); n != 1 {
		t.Errorf("IRC got her message %d times, want once", n)
	}
}

// chatPage is one tab of Chromium showing the chat page.
type chatPage struct {
	t   *testing.T
	ctx context.Context
}

// tab opens another tab of the same browser.
func (p *chatPage) tab() *chatPage {
	ctx, cancel := chromedp.NewContext(p.ctx)
	p.t.Cleanup(cancel)
	tab := &chatPage{t: p.t, ctx: ctx}
	tab.do("sizing the tab", chromedp.EmulateViewport(1000, 720))
	return tab
}

func (p *chatPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *chatPage) open(url string) {
	p.t.Helper()
	p.do("loading the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("join-button")))
}

// join clicks Join and waits for the chat.
func (p *chatPage) join() {
	p.t.Helper()
	p.do("joining", chromedp.Click(chromedp.ID("join-button")))
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](`!document.getElementById("chat").hidden || document.getElementById("join-error").textContent !== ""`,
		chromedp.WithPollingTimeout(patience))); err != nil {
		p.t.Fatalf("joining: %v", err)
	}
	if e := p.text("#join-error"); e != "" {
		p.t.Fatalf("the page did not join: %q", e)
	}
	p.waitText("#status", func(s string) bool { return strings.HasPrefix(s, "connected as ") })
}

func (p *chatPage) shoot(name string) { p.t.Helper(); screenshot(p.t, p.ctx, name) }

// text is what the element matching selector shows.
func (p *chatPage) text(selector string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, selector)))
	if err != nil {
		p.t.Fatalf("reading %s: %v", selector, err)
	}
	return s
}

// waitText waits until the element matching selector shows a text ok
// accepts, and returns it.
func (p *chatPage) waitText(selector string, ok func(string) bool) string {
	p.t.Helper()
	var s string
	defer func() {
		if p.t.Failed() {
			p.t.Logf("%s shows %q", selector, s)
		}
	}()
	testwait.For(p.t, "the text of "+selector, func() bool { s = p.text(selector); return ok(s) })
	return s
}

func (p *chatPage) visible(selector string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.offsetParent !== null; })()`, selector)))
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// personMessage is a message as the page shows it, with its ✓ or its
// "not verified".
type personMessage struct {
	shownMessage
	Verified, Unverified bool
}

// message waits for the page to show a message with this text.
func (p *chatPage) message(text string) personMessage {
	p.t.Helper()
	m := waitMessage(p.t, p.ctx, text)
	marks, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll("#messages li.msg")].find((li) => li.querySelector(".body").textContent === %q);
		return [...li.querySelectorAll(".head .verified, .head .unverified")].map((e) => e.className + ":" + e.textContent);
	})()`, text)))
	if err != nil {
		p.t.Fatal(err)
	}
	pm := personMessage{shownMessage: m}
	for _, mk := range marks {
		switch mk {
		case "verified:✓":
			pm.Verified = true
		case "unverified:not verified":
			pm.Unverified = true
		default:
			p.t.Errorf("message %q has the mark %q", text, mk)
		}
	}
	return pm
}

// aliceOnTheWeb is the world of the web page tests: InspIRCd with Atheme,
// where alice has an account, bob in #lobby, and the config of a
// switchboard linking #lobby with the web page's lobby, listening on
// listen, where alice, at home on the web page, has her IRC account with
// its password and her page's token.
func aliceOnTheWeb(t *testing.T) (chromium string, bob *testenv.IRCClient, listen string, cfg *config.Config) {
	t.Helper()
	chromium = testenv.Need(t, "chromium")
	services := testenv.Atheme(t)
	services.RegisterAccount(t, "alice", "alice-pw")
	bob = services.IRC.Client(t, "bob")
	bob.Join("#lobby")
	listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q }
networks:
  libera: { type: irc, server: %q, nick: switchboard, rate: { per_second: 0 } }
  web: { type: webrtc, loopback_candidates: true, interfaces: [lo] }
links:
  lobby: [ "libera:#lobby", "web:lobby" ]
people:
  alice:
    home: web
    accounts:
      libera: { id: alice, password: alice-pw }
      web: { id: alice, token: %q }
`, t.TempDir(), listen, services.IRC.Addr, alicePageToken)))
	if err != nil {
		t.Fatal(err)
	}
	return chromium, bob, listen, cfg
}

// loopbackPage is a chat page in a headless Chromium that peers over
// loopback inside the test's network namespace: Chromium hides its host
// candidates behind mDNS names unless told not to, and its mDNS
// responder cannot start there. It lasts at most twice patience.
func loopbackPage(t *testing.T, chromium string) *chatPage {
	t.Helper()
	browser := headlessChromium(t, chromium,
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"))
	ctx, cancel := context.WithTimeout(browser, 2*patience)
	t.Cleanup(cancel)
	return &chatPage{t: t, ctx: ctx}
}
