package xmpp

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Catch-up: back in a room after a restart or a reconnect, the bot reads
// the room's archive (XEP-0313) from the last message the router accepted
// from it, and bridges what it missed, in order, with its original time.
// The position is the room's stanza-id (what Prosody's muc_mam also
// numbers its archive with), kept per room in the adapter's State under
// catchUpPrefix: recorded as the accept queue hands each event over, and
// written catchUpFlush later and at Stop, so a crash loses at most that
// much of the position; what is then read again is known to the store by
// its remote id (the stanza-id) and refused.

const (
	// catchUpFlush is how long after an accepted event the rooms'
	// positions are written: at most one write per room per period,
	// however busy the room.
	catchUpFlush  = 200 * time.Millisecond
	catchUpPrefix = "catchup|"
	// linkedEmpty is the position of a room whose archive was empty when
	// it was first joined: everything in it came later.
	linkedEmpty = ""
)

// catchUps is the adapter's catch-up state.
type catchUps struct {
	// Under Adapter.mu: the catch-ups under way by room key, holding back
	// the room's live events meanwhile, and the queries' results.
	runs    map[string]*catchUpRun
	queries map[string]*catchUpQuery // by MAM query id

	mu    sync.Mutex
	pos   map[string]string // room addr → stanza-id of the last event accepted
	dirty map[string]bool
	done  map[string]adapters.CatchUp
	wake  chan struct{} // a position changed
	// unlinked are the rooms left since they were last joined: events
	// of theirs still in the accept queue move no position.
	unlinked map[string]bool
}

// catchUpRun is one room's catch-up under way: the live events that came
// meanwhile wait for it.
type catchUpRun struct {
	held []bridge.Event
}

// catchUpQuery collects the results of one archive page.
type catchUpQuery struct {
	room  string // room key
	items []*stanza
}

var _ adapters.CatchUpper = (*Adapter)(nil)

// CatchUps implements adapters.CatchUpper.
func (a *Adapter) CatchUps() map[string]adapters.CatchUp {
	a.cu.mu.Lock()
	defer a.cu.mu.Unlock()
	return maps.Clone(a.cu.done)
}

func (a *Adapter) catchUpOn() bool { return a.state != nil && a.cfg.CatchUp.On() }

// catchUpLocked starts the room's catch-up as the bot is in it again
// (its self-presence): the room's live events wait until it is done.
func (a *Adapter) catchUpLocked(c *session, r *room) {
	if !a.catchUpOn() || a.cu.runs[r.key] != nil {
		return
	}
	a.cu.runs[r.key] = &catchUpRun{}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.catchUp(c, r) }()
}

// emitRoom hands a room's live events on, or holds them while the room
// catches up.
func (a *Adapter) emitRoom(r *room, events []bridge.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if run := a.cu.runs[r.key]; run != nil {
		run.held = append(run.held, events...)
		return
	}
	a.emit(events...)
}

// taken records, for each room, the stanza-id of the last event the
// router accepted from it (called by the accept queue, in order).
func (a *Adapter) taken(ev bridge.Event) {
	h := ev.Head()
	if h.Origin.Network != a.name || h.Origin.Room == "" || h.Origin.RemoteID == "" || h.To != nil {
		return
	}
	a.cu.mu.Lock()
	if a.cu.unlinked[h.Origin.Room] {
		a.cu.mu.Unlock()
		return
	}
	a.cu.pos[h.Origin.Room] = h.Origin.RemoteID
	a.cu.dirty[h.Origin.Room] = true
	a.cu.mu.Unlock()
	select {
	case a.cu.wake <- struct{}{}:
	default:
	}
}

// flushCatchUp writes the rooms' positions that changed.
func (a *Adapter) flushCatchUp(ctx context.Context) {
	if a.state == nil {
		return
	}
	a.cu.mu.Lock()
	dirty := make(map[string]string, len(a.cu.dirty))
	for room := range a.cu.dirty {
		dirty[room] = a.cu.pos[room]
	}
	clear(a.cu.dirty)
	a.cu.mu.Unlock()
	for room, sid := range dirty {
		if err := a.state.Put(ctx, catchUpPrefix+room, sid); err != nil {
			a.log.Warn("xmpp: cannot record how far a room was read", "room", room, "err", err)
			a.cu.mu.Lock()
			if a.cu.pos[room] == sid {
				a.cu.dirty[room] = true // try again
			}
			a.cu.mu.Unlock()
		}
	}
}

// catchUpFlusher writes the positions catchUpFlush after they change.
func (a *Adapter) catchUpFlusher() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.cu.wake:
		}
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(catchUpFlush):
		}
		a.flushCatchUp(a.ctx)
	}
}

// position is how far the room was read: the stanza-id of the last event
// accepted from it (linkedEmpty: from the archive's start); ok is false
// for a room never joined before.
func (a *Adapter) position(ctx context.Context, r *room) (string, bool, error) {
	a.cu.mu.Lock()
	sid, ok := a.cu.pos[r.addr]
	a.cu.mu.Unlock()
	if ok {
		return sid, true, nil
	}
	return a.state.Get(ctx, catchUpPrefix+r.addr)
}

// catchUp reads what the room said since the bot last read it and
// bridges it, then the live events held meanwhile. A room joined for the
// first time only has its position recorded: what was said before it was
// linked is never bridged.
func (a *Adapter) catchUp(c *session, r *room) {
	a.mu.Lock()
	run := a.cu.runs[r.key]
	a.mu.Unlock()
	if run == nil {
		return
	}
	var missed []bridge.Event
	caught := false
	defer func() { a.release(r, run, missed, caught) }()
	ctx := c.ctx
	after, known, err := a.position(ctx, r)
	if err != nil {
		a.log.Warn("xmpp: cannot read how far a room was read; no catch-up", "room", r.addr, "err", err)
		return
	}
	if !known {
		a.linkRoom(ctx, c, r)
		return
	}
	items, capped, err := a.fetchMissed(ctx, c, r, after)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("xmpp: cannot read the room's archive; no catch-up", "room", r.addr, "err", err)
		}
		if isItemNotFound(err) {
			a.linkRoom(ctx, c, r) // the archive no longer has our position
		}
		return
	}
	if capped {
		a.log.Warn("xmpp: more missed than catch_up.max_messages; only the latest are bridged", "room", r.addr,
			"max_messages", a.cfg.CatchUp.MaxMessages)
	}
	missed, caught = a.missedEvents(c, r, items), true
	a.log.Info("xmpp: caught up", "room", r.addr, "recovered", countMessages(missed))
}

// release hands on a catch-up's events (caught: it read the archive),
// then the live ones held meanwhile that it did not already bridge, and
// ends the catch-up. A catch-up that a new session overtook drops what
// it held: the next one reads it again from the archive.
func (a *Adapter) release(r *room, run *catchUpRun, missed []bridge.Event, caught bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cu.runs[r.key] != run {
		return
	}
	delete(a.cu.runs, r.key)
	seen := map[string]bool{}
	for _, ev := range missed {
		if id := ev.Head().Origin.RemoteID; id != "" {
			seen[id] = true
		}
	}
	a.emit(missed...)
	for _, ev := range run.held {
		if id := ev.Head().Origin.RemoteID; id == "" || !seen[id] {
			a.emit(ev)
		}
	}
	if a.catchUpOn() {
		a.cu.mu.Lock()
		if caught {
			a.cu.done[r.addr] = adapters.CatchUp{At: time.Now().UTC(), Recovered: countMessages(missed)}
		}
		a.cu.mu.Unlock()
	}
}

// unlinkCatchUp forgets how far a room that is no longer linked was read:
// linked again, it starts from the end of its archive, and what was said
// while it was not linked is never bridged. A catch-up under way drops
// what it read.
func (a *Adapter) unlinkCatchUp(ctx context.Context, r *room) {
	a.mu.Lock()
	delete(a.cu.runs, r.key)
	a.mu.Unlock()
	a.cu.mu.Lock()
	delete(a.cu.pos, r.addr)
	delete(a.cu.dirty, r.addr)
	delete(a.cu.done, r.addr)
	if a.cu.unlinked == nil {
		a.cu.unlinked = map[string]bool{}
	}
	a.cu.unlinked[r.addr] = true
	a.cu.mu.Unlock()
	if a.state != nil {
		if err := a.state.Delete(ctx, catchUpPrefix+r.addr); err != nil {
			a.log.Warn("xmpp: cannot forget how far an unlinked room was read", "room", r.addr, "err", err)
		}
	}
}

// relinkCatchUp is Join's: the room's events move its position again.
func (a *Adapter) relinkCatchUp(room string) {
	a.cu.mu.Lock()
	delete(a.cu.unlinked, room)
	a.cu.mu.Unlock()
}

// dropRunsLocked ends the catch-ups of a session that ended.
func (a *Adapter) dropRunsLocked() { clear(a.cu.runs) }

func countMessages(evs []bridge.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind() == bridge.KindMessage {
			n++
		}
	}
	return n
}

// linkRoom records a room's position as the end of its archive now.
func (a *Adapter) linkRoom(ctx context.Context, c *session, r *room) {
	fin, err := a.mamPage(ctx, c, r, nil, "", "", 1, time.Time{})
	if err != nil {
		if ctx.Err() == nil {
			a.log.Info("xmpp: the room's archive cannot be read; it will not catch up", "room", r.addr, "err", err)
		}
		return
	}
	last := linkedEmpty
	if fin != nil {
		last = fin.child(nsRSM, "set").child(nsRSM, "last").textOr("")
	}
	a.cu.mu.Lock()
	a.cu.pos[r.addr] = last
	delete(a.cu.dirty, r.addr)
	a.cu.mu.Unlock()
	if err := a.state.Put(ctx, catchUpPrefix+r.addr, last); err != nil {
		a.log.Warn("xmpp: cannot record how far a room was read", "room", r.addr, "err", err)
		a.cu.mu.Lock()
		a.cu.dirty[r.addr] = true
		a.cu.mu.Unlock()
	}
}

// fetchMissed reads the room's archive after stanza-id after (linkedEmpty:
// all of it) and within catch_up.max_age, backwards a page at a time from
// its end, up to catch_up.max_messages: the latest missed messages, in
// order. capped is true when there were more.
func (a *Adapter) fetchMissed(ctx context.Context, c *session, r *room, after string) (items []*stanza, capped bool, err error) {
	limit := a.cfg.CatchUp.MaxMessages
	since := time.Now().Add(-a.cfg.CatchUp.MaxAge)
	before := ""     // the last page first
	afterID := after // asked of the server: XEP-0313's extended after-id
	for {
		var page []*stanza
		fin, err := a.mamPage(ctx, c, r, &page, before, afterID, min(archivePage, limit-len(items)), since)
		if afterID != "" && before == "" && isBadRequest(err) {
			afterID = "" // a server without after-id: read back to our position
			continue
		}
		if err != nil {
			return nil, false, err
		}
		// A server that ignores after-id: stop at our position.
		found := false
		for i, st := range page {
			if after != "" && st.stanzaIDBy(r.jid) == after {
				page, found = page[i+1:], true
				break
			}
		}
		items = append(page, items...)
		if found || fin == nil || fin.get("complete") == "true" || len(page) == 0 {
			return items, false, nil
		}
		if len(items) >= limit {
			return items, true, nil
		}
		first := fin.child(nsRSM, "set").child(nsRSM, "first").textOr("")
		if first == "" || first == before {
			return items, false, nil
		}
		before = first
	}
}

// mamPage asks the room for one page of its archive (XEP-0313) after
// stanza-id after ("": from its start), since the time given (zero: any),
// at most max messages, backwards by RSM: the page before stanza-id
// before, "" for the last one. The messages land in *page (nil: not
// kept), oldest first; it returns the <fin/>.
func (a *Adapter) mamPage(ctx context.Context, c *session, r *room, page *[]*stanza, before, after string, max int, since time.Time) (*element, error) {
	qid := newID()
	q := &catchUpQuery{room: r.key}
	a.mu.Lock()
	a.cu.queries[qid] = q
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.cu.queries, qid)
		a.mu.Unlock()
	}()
	set := el(nsRSM, "set").add(el(nsRSM, "max").withText(strconv.Itoa(max)), el(nsRSM, "before").withText(before))
	var fields []*element
	if after != "" {
		fields = append(fields, el(nsData, "field", "var", "after-id").add(el(nsData, "value").withText(after)))
	}
	st, err := a.iq(ctx, c, c.me, r.jid, "set", mamQuery(qid, since, set, fields...), a.t.join)
	if err != nil {
		return nil, err
	}
	if st.typ == "error" {
		if st.err != nil {
			return nil, st.err
		}
		return nil, fmt.Errorf("xmpp: archive query refused")
	}
	if page != nil {
		a.mu.Lock()
		*page = q.items
		a.mu.Unlock()
	}
	return st.payload, nil
}

// onCatchUpResult takes one archived message of a catch-up query; false
// when res answers no catch-up query.
func (a *Adapter) onCatchUpResult(st *stanza, res *element) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.cu.queries[res.get("queryid")]
	if q == nil {
		return false
	}
	r := a.rooms[q.room]
	if r == nil || !st.from.Equal(r.jid) {
		return true
	}
	if m := archivedMessage(res, r); m != nil {
		q.items = append(q.items, m)
	}
	return true
}

// missedEvents turns the archived messages into events, as onGroupchat
// would have when they were said, skipping ours (the bot's and the
// puppets', by their message ids, as live ones are by occupancy), the
// subjects, chat states and what this process saw already.
func (a *Adapter) missedEvents(c *session, r *room, items []*stanza) []bridge.Event {
	var all []bridge.Event
	for _, st := range items {
		nick := st.from.Resourcepart()
		sid := st.stanzaIDBy(r.jid)
		if nick == "" || sid == "" || !st.hasBody && st.retract == "" && st.retractOld == "" && st.reactions == nil {
			continue
		}
		if strings.HasPrefix(st.id, msgIDPrefix) || strings.HasPrefix(st.originID, msgIDPrefix) {
			continue
		}
		a.mu.Lock()
		if a.ownOccupantLocked(r, nick, st) || a.personalEchoLocked(r, nick, st) {
			a.mu.Unlock()
			continue
		}
		if _, seen := r.ids.authors.get(sid); seen {
			a.mu.Unlock()
			continue
		}
		o := r.occupants[nick]
		if o == nil {
			o = &occupant{nick: nick} // gone since: not made an occupant
		}
		events := a.roomEventsLocked(r, st, o, sid, sid)
		a.mu.Unlock()
		for _, ev := range events {
			ev.Head().CatchUp = true
		}
		a.readThread(r, st, events)
		all = append(all, events...)
	}
	return all
}

// archivedMessage is the message an archive result forwards, with the
// archive's id as the room's stanza-id and its time as the delay.
func archivedMessage(res *element, r *room) *stanza {
	fwd := res.child(nsForward, "forwarded")
	if fwd == nil {
		return nil
	}
	for _, k := range fwd.kids {
		if k.name.Local != "message" {
			continue
		}
		m, err := parseStanza(k)
		if err != nil {
			return nil
		}
		if d := fwd.child(nsDelay, "delay"); d != nil {
			if t, err := time.Parse(time.RFC3339Nano, d.get("stamp")); err == nil {
				m.delay = t
			}
		}
		if id := res.get("id"); id != "" && m.stanzaIDBy(r.jid) == "" {
			m.stanzaIDs = append(m.stanzaIDs, stanzaID{id: id, by: r.key})
		}
		return m
	}
	return nil
}

func isBadRequest(err error) bool {
	se, ok := err.(*stanzaError)
	return ok && (se.condition == "bad-request" || se.condition == "feature-not-implemented")
}

func isItemNotFound(err error) bool {
	se, ok := err.(*stanzaError)
	return ok && se.condition == "item-not-found"
}
