package service

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 24, history for newcomers, in a real Chromium: the page that
// joins shows the link's last messages under "Earlier messages", each
// with its sender and time, an edited one as edited, a deleted one not
// at all, and then, after "Now", the live traffic.
func TestBrowserHistory(t *testing.T) {
	inLoopbackNamespace(t, browserHistory, "inspircd")
}

func browserHistory(t *testing.T) {
	chromium := testenv.Need(t, "chromium")
	irc := testenv.InspIRCd(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "http://" + listen
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q }
networks:
  libera: { type: irc, server: %s, nick: switchboard, flood: { burst: 50, interval: 10ms }, reconnect_max: 2s }
  web: { type: webrtc, loopback_candidates: true, interfaces: [lo] }
links:
  lobby: [ "libera:%s", "web:lobby" ]
`, t.TempDir(), listen, irc.Addr, room)))
	if err != nil {
		t.Fatal(err)
	}
	runSwitchboard(t, cfg)
	bob := irc.Client(t, "bob")
	bob.Join(room)
	gopher := testenv.MustDialWebRTC(t, base, "lobby", "", "gopher", "gopher")
	// Its (empty) history first: bob's word is then live traffic, not
	// history read after it was said.
	gopher.Wait(t, patience, "the end of the history", func(f testenv.WebRTCFrame) bool { return f.Type == "history_end" })
	seen := func(text string) testenv.WebRTCFrame {
		return gopher.Wait(t, patience, text, func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == text })
	}
	bob.Say(room, "an early word")
	seen("an early word")
	gopher.Say("the typo hre")
	typo := seen("the typo hre")
	gopher.Say("oops, a secret")
	secret := seen("oops, a secret")
	gopher.Send(map[string]any{"type": "edit", "target": typo.ID, "text": "the typo here"})
	gopher.Send(map[string]any{"type": "delete", "target": secret.ID})
	bob.Say(room, "the last word before")
	seen("the last word before")
	bob.WaitText(patience, room, "gopher[web]", "* the typo here")

	page := loopbackPage(t, chromium)
	page.open(base + "/chat/lobby")
	page.do("typing the name", chromedp.SendKeys(chromedp.ID("name"), "alice"))
	page.join()
	bob.Say(room, "live now")
	waitMessage(t, page.ctx, "live now")
	items, err := chromedp.Run(page.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#messages li")].map((li) => {
		if (!li.classList.contains("msg")) return li.className + ": " + li.textContent;
		const t = li.querySelector("time");
		return [...li.classList].sort().join(" ") + ": " + li.querySelector(".who").textContent + ": " + li.querySelector(".body").textContent +
			(t && t.dateTime ? " @" : "");
	})`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"note: You joined lobby with gopher",
		"note divider: Earlier messages",
		"history msg: bob: an early word @",
		"edited history msg: gopher: the typo here @",
		"history msg: bob: the last word before @",
		"note divider: Now",
		"msg: bob: live now",
	}
	if !slices.Equal(items, want) {
		t.Errorf("the page shows\n%s\nwant\n%s", strings.Join(items, "\n"), strings.Join(want, "\n"))
	}
	page.shoot("history.png")
}
