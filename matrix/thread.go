package matrix

import (
	"context"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Threads (m.thread relations). Inbound, a thread message carries its
// root as bridge.Message.Thread and, for networks without threads, a
// reply: to the message it really answers when the client says so
// (is_falling_back false), else to the root. Outbound, a message whose
// thread root the room knows (Delivery.Thread) is posted in that
// thread; its m.in_reply_to is the message it really replies to, or,
// as a fallback for clients without threads, the latest message of the
// thread Switchboard knows of (remembered in State as threadPrefix +
// room + "|" + root).

const threadPrefix = "thread:"

// readThread sets m's Thread (and ReplyTo) from a thread relation.
func readThread(rel *event.RelatesTo, m *bridge.Message) {
	root := rel.GetThreadParent()
	if root == "" {
		return
	}
	m.Thread = bridge.Ref{Remote: string(root)}
	if rel.GetNonFallbackReplyTo() == "" {
		m.ReplyTo = m.Thread
	}
}

// noteThreadMessage remembers evt as the latest message of its thread.
func (a *Adapter) noteThreadMessage(ctx context.Context, evt *event.Event) error {
	c, ok := evt.Content.Parsed.(*event.MessageEventContent)
	if !ok {
		return nil
	}
	if root := c.RelatesTo.GetThreadParent(); root != "" {
		return a.noteInThread(ctx, evt.RoomID, string(root), string(evt.ID))
	}
	return nil
}

// noteInThread remembers evid as the latest message of the thread of
// root, and which thread it is in: a thread another network starts on
// it is that one (Matrix threads do not nest).
func (a *Adapter) noteInThread(ctx context.Context, rid id.RoomID, root, evid string) error {
	if err := a.state.Put(ctx, threadKey(rid, root), evid); err != nil {
		return err
	}
	return a.state.Put(ctx, threadOfPrefix+evid, root)
}

// threadOfPrefix starts the State keys of the thread root of a message
// in a thread, by its event id.
const threadOfPrefix = "threadof:"

func threadKey(rid id.RoomID, root string) string {
	return threadPrefix + string(rid) + "|" + root
}

// outThread is how the parts of one outbound message join a thread;
// a nil one joins none.
type outThread struct {
	rid      id.RoomID
	root     id.EventID
	replyTo  id.EventID // the message it answers, "" for none
	fallback bool       // replyTo is only there for clients without threads
}

// threadFor is the thread a message to rid joins: root is the root's
// event id in the room (Delivery.Thread), reply what the message
// replies to. A reply to the root itself is how networks without
// threads carry a thread message, not a real reply.
func (a *Adapter) threadFor(ctx context.Context, rid id.RoomID, root string, reply *bridge.Quote) (*outThread, error) {
	if root == "" {
		return nil, nil
	}
	if outer, ok, err := a.state.Get(ctx, threadOfPrefix+root); err != nil {
		return nil, err
	} else if ok && outer != "" {
		root = outer // a message in a thread: its thread
	}
	t := &outThread{rid: rid, root: id.EventID(root)}
	if reply != nil && reply.RemoteID != "" && reply.RemoteID != root {
		t.replyTo = id.EventID(reply.RemoteID)
		return t, nil
	}
	latest, ok, err := a.state.Get(ctx, threadKey(rid, root))
	if err != nil {
		return nil, err
	}
	t.replyTo, t.fallback = t.root, true
	if ok && latest != "" {
		t.replyTo = id.EventID(latest)
	}
	return t, nil
}

// relate puts c in the thread.
func (t *outThread) relate(c *event.MessageEventContent) {
	if t == nil {
		return
	}
	c.RelatesTo = &event.RelatesTo{Type: event.RelThread, EventID: t.root, InReplyTo: &event.InReplyTo{EventID: t.replyTo}, IsFallingBack: t.fallback}
}

// sent remembers evid as the thread's latest message.
func (t *outThread) sent(ctx context.Context, a *Adapter, evid string) error {
	if t == nil || evid == "" {
		return nil
	}
	return a.noteInThread(ctx, t.rid, string(t.root), evid)
}
