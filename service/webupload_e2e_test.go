package service

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestWebPageUploadsIntoXMPP (issue 24, test 1): an image sent from the
// web page reaches the MUC through Prosody's HTTP upload service
// (XEP-0363), its URL on the XMPP server as body and out-of-band
// element, serving the same bytes, while IRC gets Switchboard's link; an
// image over the service's limit (but within the page's files.max_size)
// arrives as Switchboard's signed link, which serves the same bytes.
// The page is the Go WebRTC peer, which sends files as app.js does: a
// POST of the bytes to its session's URL + "/files?name=…".
func TestWebPageUploadsIntoXMPP(t *testing.T) {
	const limit = 64 << 10
	w := newXWorldWith(t, testenv.XMPPServerConfig{FileShareLimit: limit})
	cfg := w.config(t, "")
	// The web network of the IRC world's WebRTC config, in the same link.
	web, base := w.webrtcConfig(t)
	cfg.Networks["web"] = web.Networks["web"]
	cfg.LinkRooms["lobby"] = append(cfg.LinkRooms["lobby"], "web:room")
	cfg.HTTP.Listen = web.HTTP.Listen
	cfg.HTTP.PublicURL = base + "/"
	runSwitchboard(t, cfg)
	carol := w.person(t, "carol")
	bob := w.human(t, "bob")
	alice := testenv.MustDialWebRTC(t, base, "room", "", "alice", "alice")

	// send posts a file as the page's sendFile does (no room token here).
	send := func(t *testing.T, name string, pic []byte) {
		t.Helper()
		resp, body := testenv.HTTP(t, http.MethodPost, base+alice.Location+"/files?name="+url.QueryEscape(name), "", pic)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", name, resp.StatusCode, body)
		}
	}
	signed := base + "/webrtc/files/"

	t.Run("image", func(t *testing.T) {
		pic := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat(fmt.Sprint(time.Now().UnixNano()), 1000))
		send(t, "sunset.png", pic)
		st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && strings.HasSuffix(oobURL(s), "/sunset.png")
		})
		up := oobURL(st)
		if !strings.HasPrefix(up, w.xmpp.UploadURL+"/") || st.Body() != up {
			t.Fatalf("want the upload's URL on the XMPP server as body and OOB: %s", st.Raw)
		}
		wantBytes(t, up, pic)
		// IRC, without an upload service, gets Switchboard's link.
		line := bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
			return strings.HasPrefix(l.Text(), "sunset.png: "+signed)
		})
		wantBytes(t, linkIn(line.Text(), signed), pic)
	})

	t.Run("over the limit", func(t *testing.T) {
		pic := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("big", limit/3+100))
		send(t, "mountain.png", pic)
		st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && strings.HasSuffix(oobURL(s), "/mountain.png")
		})
		link := oobURL(st)
		if !strings.HasPrefix(link, signed) || !strings.HasSuffix(st.Body(), link) {
			t.Fatalf("want the link through Switchboard: %s", st.Raw)
		}
		wantBytes(t, link, pic)
	})
}
