package service

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestUploadsIntoXMPP: an image a Matrix user sends on Dendrite reaches
// the MUC through Prosody's HTTP upload service (XEP-0363): its URL on
// the XMPP server as body and out-of-band element, serving the same
// bytes; a file over the service's limit arrives as the link through
// Switchboard, as before. (TestWebPageUploadsIntoXMPP does the same
// with files from the web page.)
func TestUploadsIntoXMPP(t *testing.T) {
	const limit = 64 << 10
	w := newMWorldOn(t, newXWorldWith(t, testenv.XMPPServerConfig{FileShareLimit: limit}))
	cfg := w.config(t, "")
	cfg.HTTP.PublicURL = "http://" + w.httpAddr + "/"
	runSwitchboard(t, cfg)
	carol := w.person(t, "carol")

	sendImage := func(t *testing.T, name string, pic []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		up, err := w.alice.UploadBytesWithName(ctx, pic, "image/png", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.alice.Send(w.roomID, &event.MessageEventContent{
			MsgType: event.MsgImage, Body: name, URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "image/png", Size: len(pic)},
		}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("image", func(t *testing.T) {
		pic := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat(fmt.Sprint(time.Now().UnixNano()), 1000))
		sendImage(t, "sunset.png", pic)
		st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && strings.HasSuffix(oobURL(s), "/sunset.png")
		})
		get := oobURL(st)
		if !strings.HasPrefix(get, w.xmpp.UploadURL+"/") || st.Body() != get {
			t.Fatalf("want the upload's URL on the XMPP server as body and OOB: %s", st.Raw)
		}
		wantBytes(t, get, pic)
	})

	t.Run("over the limit", func(t *testing.T) {
		pic := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("big", limit/3+100))
		sendImage(t, "mountain.png", pic)
		st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && strings.HasSuffix(oobURL(s), "/mountain.png")
		})
		link := oobURL(st)
		if !strings.HasPrefix(link, "http://"+w.httpAddr+"/media/matrix/mx/") || !strings.HasSuffix(st.Body(), link) {
			t.Fatalf("want the link through Switchboard: %s", st.Raw)
		}
		wantBytes(t, link, pic)
	})
}

// oobURL is the URL of a message's out-of-band element (XEP-0066).
func oobURL(s testenv.XMPPStanza) string {
	return s.Child("jabber:x:oob", "x").Child("jabber:x:oob", "url").TextOrEmpty()
}

// wantBytes checks that a GET of link serves want.
func wantBytes(t *testing.T, link string, want []byte) {
	t.Helper()
	resp, body := testenv.HTTP(t, http.MethodGet, link, "", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("GET %s: %d, %d bytes; want the %d sent", link, resp.StatusCode, len(body), len(want))
	}
}
