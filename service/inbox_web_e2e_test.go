package service

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// Issue 22, the one inbox on the web page, through the whole service, a
// real Chromium and InspIRCd with Atheme: alice's home is the web page,
// and Switchboard holds her IRC nick. bob PMs alice while no page of
// hers is open; the PM waits, and shows in her page's Direct panel when
// she opens it with her token, as private, from bob on libera, apart from
// the room. What bob writes next shows on each page of hers that is
// open. Her answer there reaches bob as a PM from her own nick, logged in
// to her account; the room sees none of it.
func TestOneInboxOnTheWebPage(t *testing.T) {
	inLoopbackNamespace(t, oneInboxOnTheWebPage, "inspircd", "/usr/bin/atheme-services")
}

func oneInboxOnTheWebPage(t *testing.T) {
	chromium, bob, listen, cfg := aliceOnTheWeb(t)
	svc, _ := runService(t, cfg)
	testwait.For(t, "alice's IRC connection", func() bool {
		for _, n := range getStatus(t, svc).Networks {
			if n.Name == "libera" && n.People["alice"] == "connected" {
				return true
			}
		}
		return false
	})

	// Her page is closed: bob's PM waits for it, and bob is not told it
	// failed.
	bob.Say("alice", "are you there, alice?")
	time.Sleep(2 * time.Second)

	page := loopbackPage(t, chromium)
	page.open("http://" + listen + "/chat/lobby")
	page.do("typing her token", chromedp.SendKeys(chromedp.ID("person-token"), alicePageToken))
	page.join()
	if dm := page.direct("are you there, alice?"); dm != "bob (libera) → you, privately" {
		t.Errorf("the PM that waited shows as %q, want from bob (libera), privately", dm)
	}

	// She opens a second page (her phone, say). While she is there, bob
	// writes again; it shows at once, on both.
	phone := page.tab()
	phone.open("http://" + listen + "/chat/lobby")
	phone.do("typing her token", chromedp.SendKeys(chromedp.ID("person-token"), alicePageToken))
	phone.join()
	bob.Say("alice", "ah, there you are")
	for _, p := range []*chatPage{page, phone} {
		if dm := p.direct("ah, there you are"); dm != "bob (libera) → you, privately" {
			t.Errorf("bob's second PM shows as %q", dm)
		}
	}
	if to := page.text("#direct-to option:checked"); to != "bob (libera)" {
		t.Errorf("her answer would go to %q, want bob (libera)", to)
	}

	// She answers in the conversation: bob gets it from her own nick.
	page.do("answering privately", chromedp.SendKeys(chromedp.ID("direct-text"), "hi bob, just for you"), chromedp.Click(chromedp.ID("direct-send-button")))
	l := bob.WaitText(patience, "bob", "alice", "hi bob, just for you")
	if ok, acct := l.GetTag("account"); !ok || acct != "alice" {
		t.Errorf("her answer's account tag: %q (present %v), want alice", acct, ok)
	}
	for _, p := range []*chatPage{page, phone} {
		if dm := p.direct("hi bob, just for you"); dm != "You → bob (libera)" {
			t.Errorf("her answer shows on her page as %q, want You → bob (libera)", dm)
		}
	}
	page.shoot("inbox-web.png")

	// Private: none of it in the room, on the page or on IRC; each once.
	time.Sleep(time.Second)
	room, err := chromedp.Run(page.ctx, chromedp.Evaluate[string](`document.getElementById("messages").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(page.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#direct-messages li .body")].map((b) => b.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"are you there, alice?", "ah, there you are", "hi bob, just for you"}; strings.Join(shown, "|") != strings.Join(want, "|") {
		t.Errorf("her Direct panel shows %q, want %q", shown, want)
	}
	for _, text := range []string{"are you there", "ah, there you are", "just for you"} {
		if strings.Contains(room, text) {
			t.Errorf("the room on her page shows %q: %s", text, room)
		}
	}
	for _, l := range bob.Lines() {
		switch {
		case l.Command == "PRIVMSG" && l.Target() == "#lobby":
			t.Errorf("IRC #lobby got %q from %s", l.Text(), l.Nick())
		case strings.Contains(l.Text(), "not delivered"):
			t.Errorf("bob was told: %q", l.Text())
		}
	}
	if n := len(bob.Messages(func(l testenv.IRCLine) bool { return l.Text() == "hi bob, just for you" })); n != 1 {
		t.Errorf("bob got her answer %d times, want once", n)
	}
}

// direct waits for the page's Direct panel to show a private message
// with this text, and returns with whom it says it is.
func (p *chatPage) direct(text string) string {
	p.t.Helper()
	with, err := chromedp.Run(p.ctx, chromedp.Poll[string](fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll("#direct-messages li.dm")].find((li) => li.querySelector(".body").textContent === %q && li.offsetParent !== null);
		return li ? li.querySelector(".with").textContent : null;
	})()`, text), chromedp.WithPollingTimeout(patience)))
	if err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("direct").outerHTML`))
		p.t.Fatalf("the Direct panel never showed %q: %v\n%s", text, err, html)
	}
	return with
}
