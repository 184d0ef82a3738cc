package xmpp

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Namespaces of the room archive queries (XEP-0313, XEP-0059).
const (
	nsMAM     = "urn:xmpp:mam:2"
	nsForward = "urn:xmpp:forward:0"
	nsData    = "jabber:x:data"
	nsRSM     = "http://jabber.org/protocol/rsm"
)

// Limits of a room archive search for a message we may have sent.
const (
	// archiveMargin is how long before the first attempt the search
	// starts: the server's clock may run behind ours.
	archiveMargin = 2 * time.Minute
	archivePage   = 50 // Prosody's default cap per page
	archivePages  = 20
)

// archiveQuery is a search of a room's archive for one of our messages,
// filled by the read loop from the results the room sends.
type archiveQuery struct {
	room  jid.JID
	id    string // the message id / origin-id we look for
	found string // its stanza-id
	read  *archiveRead
}

// archiveRead is what one session read of a room's archive while looking
// for messages an earlier session sent: after a connection drops in the
// middle of a burst, every message that was awaiting its reflection is
// looked up, and each search goes on from where the one before stopped
// instead of reading the archive from the start again.
type archiveRead struct {
	gen      uint64            // the session that read it
	start    time.Time         // where the searches start
	ours     map[string]string // our message ids seen → their stanza-ids
	after    string            // the RSM cursor of the last page read
	complete bool              // the last page read was the archive's last
}

// archived looks in a room's archive (XEP-0313) for the message id that
// an earlier session sent (or tried to) at first or later, and returns
// its stanza-id, or "" when it is not there. A message the room accepted
// but whose reflection was lost with the connection is found this way
// instead of being sent again. When the room keeps no archive the bot may
// read (no muc_mam, a members-only room: the query fails) or the search
// runs past archivePages, it is "" too: the caller sends again, as it
// would without the search, and the room may then show it twice. An
// archive read to its end by this session answers later searches for
// messages of earlier sessions without a query: what those sent is all in
// it by then.
func (a *Adapter) archived(ctx context.Context, c *session, r *room, id string, first time.Time) (string, error) {
	start := first.Add(-archiveMargin)
	a.mu.Lock()
	read := r.archiveRead
	if read == nil || read.gen != c.gen || start.Before(read.start) {
		read = &archiveRead{gen: c.gen, start: start, ours: map[string]string{}}
		r.archiveRead = read
	}
	sid, ok := read.ours[id]
	complete, after := read.complete, read.after
	a.mu.Unlock()
	if ok || complete {
		return sid, nil
	}
	qid := newID()
	q := &archiveQuery{room: r.jid, id: id, read: read}
	a.mu.Lock()
	a.archive[qid] = q
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.archive, qid)
		a.mu.Unlock()
	}()
	for range archivePages {
		set := el(nsRSM, "set").add(el(nsRSM, "max").withText(strconv.Itoa(archivePage)))
		if after != "" {
			set.add(el(nsRSM, "after").withText(after))
		}
		st, err := a.iq(ctx, c, c.me, r.jid, "set", mamQuery(qid, read.start, set), a.t.join)
		if err != nil {
			return "", err
		}
		if st.typ == "error" {
			a.log.Warn("xmpp: cannot search the room archive; sending again", "room", r.addr, "id", id, "err", st.err)
			return "", nil
		}
		fin := st.payload
		last := ""
		if fin != nil {
			last = fin.child(nsRSM, "set").child(nsRSM, "last").textOr("")
		}
		a.mu.Lock()
		sid := q.found
		if last != "" {
			read.after = last
		}
		read.complete = fin == nil || fin.get("complete") == "true"
		complete := read.complete
		a.mu.Unlock()
		if sid != "" || complete || last == "" {
			return sid, nil
		}
		after = last
	}
	a.log.Warn("xmpp: room archive too long to search; sending again", "room", r.addr, "id", id)
	return "", nil
}

// mamQuery is an archive query (XEP-0313) with id qid: for messages since
// start (zero: any), with the RSM set and the form's other fields.
func mamQuery(qid string, start time.Time, set *element, fields ...*element) *element {
	form := el(nsData, "x", "type", "submit").add(
		el(nsData, "field", "var", "FORM_TYPE", "type", "hidden").add(el(nsData, "value").withText(nsMAM)))
	if !start.IsZero() {
		form.add(el(nsData, "field", "var", "start").add(el(nsData, "value").withText(start.UTC().Format("2006-01-02T15:04:05Z"))))
	}
	form.add(fields...)
	return el(nsMAM, "query", "queryid", qid).add(form, set)
}

// onArchived reads one result of an archive search: a message of the
// room's archive, forwarded by the room.
func (a *Adapter) onArchived(st *stanza, res *element) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.archive[res.get("queryid")]
	if q == nil || !st.from.Equal(q.room) {
		return
	}
	fwd := res.child(nsForward, "forwarded")
	if fwd == nil {
		return
	}
	for _, k := range fwd.kids {
		if k.name.Local != "message" {
			continue
		}
		m, err := parseStanza(k)
		if err != nil {
			continue
		}
		sid := res.get("id")
		for _, mid := range []string{m.id, m.originID} {
			if strings.HasPrefix(mid, msgIDPrefix) {
				q.read.ours[mid] = sid
			}
		}
		if q.found == "" && (m.id == q.id || m.originID == q.id) {
			q.found = sid
		}
	}
}

// maybeInRoom reports whether a message that failed may have reached the
// room all the same: its session ended while it waited for the
// reflection (the room did not refuse it).
func (o *outMsg) maybeInRoom() bool {
	var se *stanzaError
	return o.finished() && o.err != nil && !errors.As(o.err, &se)
}
