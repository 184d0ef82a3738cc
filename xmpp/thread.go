package xmpp

import (
	"context"
	"strings"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Threads in rooms (XEP-0201 <thread/>). A thread is known to the bridge
// by its first message (bridge.Message.Thread); XMPP clients know it by
// its thread id. Switchboard names a thread after its root's remote id
// in the room (its stanza-id), so a client answering in it sends that id
// back; a thread an XMPP client started with an id of its own is
// remembered in State (threadRootPrefix: room + "|" + thread id -> the
// root's remote id, and threadIDPrefix: room + "|" + root -> thread id),
// so that it survives restarts and answers from other networks carry
// the id the clients know. One-to-one chats are left alone: many
// clients put every chat of a session in a <thread/> of its own.

const (
	threadRootPrefix = "thread:"
	threadIDPrefix   = "threadid:"
	// maxThreadID bounds the thread ids remembered; longer ones are
	// not taken as threads.
	maxThreadID = 256
)

// UseState implements adapters.Stateful: thread ids and uploads are
// remembered across restarts (uploads in memory only without it).
func (a *Adapter) UseState(s adapters.State) { a.state = s }

// readThread sets Thread (and, for networks without threads, ReplyTo)
// of the message among events that st, a room message, carries, from
// its <thread/>. The first message of a thread unknown so far becomes
// its root.
func (a *Adapter) readThread(r *room, st *stanza, events []bridge.Event) {
	th := st.el.child(st.el.name.Space, "thread")
	if th == nil || a.state == nil {
		return
	}
	var m *bridge.Message
	for _, ev := range events {
		if mm, ok := ev.(*bridge.Message); ok {
			m = mm
		}
	}
	tid := strings.TrimSpace(th.text)
	if m == nil || tid == "" || len(tid) > maxThreadID {
		return
	}
	ctx := a.ctx
	root, ok := a.threadRoot(ctx, r, tid)
	if !ok {
		if parent := strings.TrimSpace(th.get("parent")); parent != "" && len(parent) <= maxThreadID {
			// A thread within a thread: Matrix has one level, the parent's.
			root, ok = a.threadRoot(ctx, r, parent)
		}
	}
	if !ok {
		// A thread this message starts.
		if remote := m.Origin.RemoteID; remote != "" {
			key := r.addr + "|" + tid
			if _, err := a.state.PutIfAbsent(ctx, threadRootPrefix+key, remote); err != nil {
				a.log.Warn("xmpp: cannot remember a thread", "room", r.addr, "err", err)
			}
			if _, err := a.state.PutIfAbsent(ctx, threadIDPrefix+r.addr+"|"+remote, tid); err != nil {
				a.log.Warn("xmpp: cannot remember a thread", "room", r.addr, "err", err)
			}
		}
		return
	}
	if root == m.Origin.RemoteID {
		return
	}
	m.Thread = bridge.Ref{Remote: root}
	if m.ReplyTo.IsZero() {
		m.ReplyTo = m.Thread
	}
}

// threadRoot is the remote id of the root of thread tid in r: as
// remembered, or tid itself when it is the id of a message the room
// showed us.
func (a *Adapter) threadRoot(ctx context.Context, r *room, tid string) (string, bool) {
	root, ok, err := a.state.Get(ctx, threadRootPrefix+r.addr+"|"+tid)
	if err != nil {
		a.log.Warn("xmpp: cannot read a thread", "room", r.addr, "err", err)
	}
	if ok && root != "" {
		return root, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sid := r.ids.resolve(tid)
	if _, seen := r.ids.authors.get(sid); seen {
		return sid, true
	}
	if _, ours := r.ids.sent.get(sid); ours {
		return sid, true
	}
	return "", false
}

// addThread puts e, a message to r, in the thread of root (the root's
// remote id in r, "" for none), under the id XMPP clients know it by.
func (a *Adapter) addThread(ctx context.Context, r *room, root string, e *element) error {
	if root == "" {
		return nil
	}
	tid := root
	if a.state != nil {
		v, ok, err := a.state.Get(ctx, threadIDPrefix+r.addr+"|"+root)
		if err != nil {
			return err
		}
		if ok && v != "" {
			tid = v
		} else if _, err := a.state.PutIfAbsent(ctx, threadRootPrefix+r.addr+"|"+root, root); err != nil {
			// Known after a restart too, when a client answers in it.
			return err
		}
	}
	e.add(el("", "thread").withText(tid))
	return nil
}
