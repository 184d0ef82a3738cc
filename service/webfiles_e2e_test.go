package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/matrix"
)

// Issue 24, files on the web page, through the whole service, a real
// Chromium, InspIRCd and Dendrite: the page sends a PNG (its file button)
// and bob on IRC gets a link that downloads the same bytes, carol on
// Matrix the image; a file dropped on the chat arrives too, shown as a
// link with its name and size, and a pasted picture; and an image carol
// sends on Matrix shows inline on the page.
func TestWebPageFiles(t *testing.T) {
	inLoopbackNamespace(t, webPageFiles, "inspircd")
}

// testPNG is a w×h picture: stripes of c1 and c2, to tell pictures
// apart on a screenshot.
func testPNG(t *testing.T, w, h int, c1, c2 color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := c1
			if (x/12)%2 == 1 {
				c = c2
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func webPageFiles(t *testing.T) {
	chromium := testenv.Need(t, "chromium")
	irc := testenv.InspIRCd(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "http://" + listen
	const ircRoom = "#files"
	mxCfg := func(homeserver, roomID string) *config.Config {
		cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q, public_url: %q }
networks:
  libera: { type: irc, server: %q, nick: switchboard, rate: { per_second: 0 } }
  mx:
    type: matrix
    homeserver: %q
    domain: localhost
    as_token: as-token-files-0123456789abcdef
    hs_token: hs-token-files-0123456789abcdef
    url: %q
    # The page's files are linked on 127.0.0.1, as everything here.
    media: { private_addresses: true }
  web: { type: webrtc, loopback_candidates: true, interfaces: [lo] }
links:
  lobby: [ "libera:%s", "mx:%s", "web:lobby" ]
`, t.TempDir(), listen, base, irc.Addr, homeserver, base, ircRoom, roomID)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	reg, err := matrix.RegistrationYAML(mxCfg("http://placeholder", "!placeholder:localhost"), "mx")
	if err != nil {
		t.Fatal(err)
	}
	hs := testenv.Dendrite(t, reg)
	carol := hs.Client(t, "carol")
	roomID := carol.NewRoom(true, "")
	runSwitchboard(t, mxCfg(hs.URL, string(roomID)))
	bob := irc.Client(t, "bob")
	bob.Join(ircRoom)

	page := loopbackPage(t, chromium)
	page.open(base + "/chat/lobby")
	page.do("typing the name", chromedp.SendKeys(chromedp.ID("name"), "alice"))
	page.join()
	if !page.visible("#attach") {
		t.Fatal("no file button on the page")
	}

	// The 📎 button's file input takes a PNG: bob gets a link to it, which
	// serves the same bytes as an image.
	pic := testPNG(t, 240, 160, color.RGBA{0xe1, 0x1d, 0x48, 0xff}, color.RGBA{0xfa, 0xcc, 0x15, 0xff})
	picPath := filepath.Join(t.TempDir(), "red stripes.png")
	if err := os.WriteFile(picPath, pic, 0o644); err != nil {
		t.Fatal(err)
	}
	pdfPath := filepath.Join(t.TempDir(), "slides.pdf")
	if err := os.WriteFile(pdfPath, []byte("%PDF-1.4\n% slides\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	page.do("choosing two files", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{picPath, pdfPath}))
	prefix := base + "/webrtc/files/"
	line := bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.EqualFold(l.Target(), ircRoom) && strings.Contains(l.Text(), prefix)
	})
	link := linkIn(line.Text(), prefix)
	if !strings.HasSuffix(link, "/red%20stripes.png") || !strings.HasPrefix(line.Text(), "red stripes.png: ") {
		t.Errorf("IRC line %q: want the file's name and its link", line.Text())
	}
	resp, body := testenv.HTTP(t, http.MethodGet, link, "", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pic) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s: %d %q, %d bytes; want the %d sent, as image/png with nosniff", link, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(pic))
	}
	// Matrix gets it as an image (uploaded from the link), the same bytes.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, _, err := carol.WaitFor(ctx, 0, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.MsgType == event.MsgImage && c.Body == "red stripes.png"
	})
	if err != nil {
		t.Fatalf("carol never got alice's picture on Matrix: %v", err)
	}
	if c, _ := messageText(ev); c.Info == nil || c.Info.MimeType != "image/png" || c.Info.Size != len(pic) {
		t.Errorf("the Matrix image event: %+v", c)
	} else if uri, err := c.URL.Parse(); err != nil {
		t.Error(err)
	} else if got, err := carol.DownloadBytes(ctx, uri); err != nil || !bytes.Equal(got, pic) {
		t.Errorf("the picture on Matrix: %d bytes, %v; want the %d sent", len(got), err, len(pic))
	}
	// On the page it is alice's own message, the picture inline.
	if got := page.shownImage(link); got.Width != 240 || !got.Mine || got.Lazy != "lazy" {
		t.Errorf("her picture on the page: %+v, want it shown 240 px wide, as hers, loaded lazily", got)
	}

	// The second file chosen goes too, after the first.
	bob.WaitMessage(patience, func(l testenv.IRCLine) bool { return strings.HasPrefix(l.Text(), "slides.pdf: "+prefix) })

	// Files dropped on the chat: links with their names and sizes, on the
	// page and on IRC.
	page.do("dropping two files", chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(["the minutes of the meeting\n".repeat(100)], "minutes.txt", { type: "text/plain" }));
		dt.items.add(new File(["1. files\n"], "agenda.txt", { type: "text/plain" }));
		document.getElementById("chat").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	line = bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.HasPrefix(l.Text(), "minutes.txt: "+prefix)
	})
	if resp, body := testenv.HTTP(t, http.MethodGet, linkIn(line.Text(), prefix), "", nil); resp.StatusCode != http.StatusOK ||
		len(body) != 2700 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("the dropped file's link: %d, %d bytes, %q", resp.StatusCode, len(body), resp.Header.Get("Content-Disposition"))
	}
	bob.WaitMessage(patience, func(l testenv.IRCLine) bool { return strings.HasPrefix(l.Text(), "agenda.txt: "+prefix) })
	page.waitText("#messages", func(s string) bool {
		return strings.Contains(s, "minutes.txt2.6 KB") && strings.Contains(s, "agenda.txt9 B") && !strings.Contains(s, "Sending")
	})

	// A screenshot pasted into the send box is sent as a picture, here
	// in answer to bob.
	bob.Say(ircRoom, "show me your screen")
	waitMessage(t, page.ctx, "show me your screen")
	page.do("replying to bob", tool("show me your screen", "Reply"), chromedp.WaitVisible(chromedp.ID("replying")))
	shot := testPNG(t, 64, 32, color.RGBA{0x15, 0x80, 0x3d, 0xff}, color.RGBA{0xff, 0xff, 0xff, 0xff})
	page.do("pasting a picture", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))], "image.png", { type: "image/png" }));
		document.getElementById("text").dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`, base64.StdEncoding.EncodeToString(shot))))
	line = bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.HasPrefix(l.Text(), "pasted-image.png: "+prefix)
	})
	if resp, body := testenv.HTTP(t, http.MethodGet, linkIn(line.Text(), prefix), "", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, shot) {
		t.Errorf("the pasted picture's link: %d, %d bytes, want the %d pasted", resp.StatusCode, len(body), len(shot))
	}
	if got := page.shownImage(linkIn(line.Text(), prefix)); got.Width != 64 || !strings.Contains(got.Quote, "show me your screen") {
		t.Errorf("the pasted picture on the page: %+v, want it 64 px wide, answering bob", got)
	}
	if page.visible("#replying") {
		t.Error("the page still replies to bob after the picture went")
	}

	// carol's picture on Matrix shows inline on the page.
	mxPic := testPNG(t, 200, 120, color.RGBA{0x25, 0x63, 0xeb, 0xff}, color.RGBA{0xf9, 0x73, 0x16, 0xff})
	up, err := carol.UploadBytesWithName(ctx, mxPic, "image/png", "blue and orange.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Send(roomID, &event.MessageEventContent{
		MsgType: event.MsgImage, Body: "blue and orange.png", URL: up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: "image/png", Size: len(mxPic)},
	}); err != nil {
		t.Fatal(err)
	}
	got := page.shownImage(base + "/media/matrix/mx/")
	if got.Width != 200 || got.Mine || got.Who != "carol" || got.Alt != "blue and orange.png" {
		t.Errorf("carol's picture on the page: %+v, want shown 200 px wide, from carol", got)
	}
	if got.Text != "" {
		t.Errorf("the picture's message also shows the text %q", got.Text)
	}
	page.shoot("web-files.png")
}

// linkIn is the first word of text that starts with prefix.
func linkIn(text, prefix string) string {
	for _, f := range strings.Fields(text) {
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	return ""
}

// shownPicture is an image a message of the page shows.
type shownPicture struct {
	Width int    `json:"width"` // as loaded (naturalWidth): 0 when not shown
	Alt   string `json:"alt"`
	Lazy  string `json:"lazy"`
	Who   string `json:"who"`
	Mine  bool   `json:"mine"`
	Text  string `json:"text"` // the message's text, if shown
	Quote string `json:"quote"`
}

// shownImage waits for the page to show a loaded picture whose URL
// starts with prefix.
func (p *chatPage) shownImage(prefix string) shownPicture {
	p.t.Helper()
	got, err := chromedp.Run(p.ctx, chromedp.Poll[shownPicture](fmt.Sprintf(`(() => {
		const img = [...document.querySelectorAll("#messages li.msg .attachments img")].find((i) => i.src.startsWith(%q) && i.complete && i.naturalWidth > 0);
		if (!img) return null;
		const li = img.closest("li.msg"), body = li.querySelector(".body");
		return { width: img.naturalWidth, alt: img.alt, lazy: img.loading, who: li.querySelector(".who").textContent,
			mine: li.classList.contains("mine"), text: body.offsetParent !== null ? body.textContent : "",
			quote: li.querySelector(".quote") ? li.querySelector(".quote").textContent : "" };
	})()`, prefix), chromedp.WithPollingTimeout(patience)))
	if err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("messages").outerHTML`))
		p.t.Fatalf("the page shows no picture from %s: %v\n%s", prefix, err, html)
	}
	return got
}
