package xmpp

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

type fakeLinks struct{}

func (fakeLinks) TextLink(id bridge.EventID) string {
	return "https://bridge.example/text/sig/" + string(id)
}

// TestMaxMessageBytes: with max_message_bytes, a 200 KB message reaches
// the room as its beginning, the cut marker and the link to the whole;
// without a limit it goes out whole.
func TestMaxMessageBytes(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "long")
	a, _ := newTestAdapter(t, srv, setup{})
	a.cfg.MaxMessageBytes = 1000
	a.UseTextLinks(fakeLinks{})
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")

	text := strings.Repeat("grüße 日本語 word ", 200*1024/25)
	m := message(foreign("libera", "Bob", "bob"), text)
	// The attachment's line comes after the cut text, whole.
	att := bridge.Attachment{URL: "https://files.example/x.png", Name: "x.png"}
	m.Attachments = []bridge.Attachment{att}
	send(t, a, room, m)
	link := "https://bridge.example/text/sig/" + string(m.ID)
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasSuffix(s.Body(), att.Line()) })
	body, ok := strings.CutSuffix(st.Body(), "\n"+att.Line())
	head, _, cut := strings.Cut(body, " … (message cut: ")
	if !ok || !cut || len(body) > 1000 || !strings.HasPrefix(text, head) || body != bridge.CutText(text, 1000, link) {
		t.Errorf("body of %d bytes: %.80q … %.120q", len(body), body, body[max(0, len(body)-120):])
	}

	a.cfg.MaxMessageBytes = 0
	whole := strings.TrimSpace(text[:20000-20000%len("grüße 日本語 word ")])
	send(t, a, room, message(foreign("libera", "Bob", "bob"), whole))
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == whole })
}
