package matrix

import (
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A thread message's reply is the message it answers only when the
// client says it is a real reply; otherwise networks without threads
// see it as a reply to the root.
func TestReadThread(t *testing.T) {
	for _, tc := range []struct {
		name          string
		rel           *event.RelatesTo
		thread, reply string
	}{
		{"no relation", nil, "", ""},
		{"a plain reply", &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: "$other"}}, "", "$other"},
		{"in a thread, falling back", (&event.RelatesTo{}).SetThread("$root", "$latest"), "$root", "$root"},
		{"in a thread, no reply at all", &event.RelatesTo{Type: event.RelThread, EventID: "$root"}, "$root", "$root"},
		{"in a thread, a real reply", (&event.RelatesTo{Type: event.RelThread, EventID: "$root"}).SetReplyTo("$answered"), "$root", "$answered"},
	} {
		m := &bridge.Message{}
		if id := tc.rel.GetReplyTo(); id != "" {
			m.ReplyTo = bridge.Ref{Remote: string(id)} // as convertMessage reads it
		}
		readThread(tc.rel, m)
		if m.Thread.Remote != tc.thread || m.ReplyTo.Remote != tc.reply {
			t.Errorf("%s: thread %q reply %q, want %q and %q", tc.name, m.Thread.Remote, m.ReplyTo.Remote, tc.thread, tc.reply)
		}
	}
}

// relate puts every part of a message in the thread, as a real reply or
// falling back.
func TestOutThreadRelate(t *testing.T) {
	c := &event.MessageEventContent{Body: "x"}
	(*outThread)(nil).relate(c)
	if c.RelatesTo != nil {
		t.Fatalf("no thread, yet a relation %+v", c.RelatesTo)
	}
	(&outThread{root: "$root", replyTo: "$latest", fallback: true}).relate(c)
	if r := c.RelatesTo; r.GetThreadParent() != "$root" || !r.IsFallingBack || r.GetReplyTo() != "$latest" || r.GetNonFallbackReplyTo() != "" {
		t.Errorf("falling back: %+v", r)
	}
	(&outThread{root: "$root", replyTo: "$answered"}).relate(c)
	if r := c.RelatesTo; r.GetThreadParent() != "$root" || r.IsFallingBack || r.GetNonFallbackReplyTo() != "$answered" {
		t.Errorf("a real reply: %+v", r)
	}
}
