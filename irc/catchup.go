package irc

// Catch-up: what was said in a channel while the bot was out of it
// (Switchboard restarting, or its connection down) is bridged once it is
// back, from the join playback of InspIRCd's m_chanhistory (channel mode
// +H). The server sends the channel's recent lines right after the JOIN,
// in a "chathistory" batch, each with its original server-time (to the
// second) and msgid. The adapter keeps, per channel, the last line it
// handed to the router (its msgid, time and a hash of sender and text),
// and bridges from the playback only what comes after it.
//
// Where the server offers draft/chathistory, the bot asks for what came
// after that line instead (chathistory.go), and the reply takes the same
// path.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/ergochat/irc-go/ircevent"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

const (
	// cursorFlushEvery is how often the channels' last lines are written
	// to the state: not once per line, and a crash loses at most this
	// much progress, which the next playback bridges again (the router's
	// event ids make that a repeat of the same event).
	cursorFlushEvery = time.Second
	cursorKeyPrefix  = "catchup/"
	// chatHistoryBatch is the batch type of InspIRCd's join playback
	// (and of draft/chathistory replies).
	chatHistoryBatch = "chathistory"
)

var (
	_ adapters.Stateful   = (*Adapter)(nil)
	_ adapters.CatchUpper = (*Adapter)(nil)
)

// cursor is the last line of a channel the adapter saw, as far as
// catch-up needs it. A cursor with a time but no line is where bridging
// the channel began: nothing said before it is bridged.
type cursor struct {
	MsgID string    `json:"msgid,omitempty"`
	Time  time.Time `json:"time"`
	Hash  string    `json:"hash,omitempty"` // of sender and text, for servers without msgid
}

// roomCatchUp is a channel's catch-up state, in its room.
type roomCatchUp struct {
	loaded bool   // saved holds the stored cursor (or the link's start)
	saved  cursor // the last line the router accepted
	seen   cursor // the last line handed to the router (ahead of saved)
	dirty  bool   // saved is not written yet
}

// catchUpState is the adapter's catch-up state; a.mu guards it.
type catchUpState struct {
	state    adapters.State
	catchUps map[string]adapters.CatchUp // by channel as configured
}

// UseState implements adapters.Stateful: the channels' last lines are
// kept there across restarts.
func (a *Adapter) UseState(s adapters.State) {
	a.mu.Lock()
	a.state = s
	a.mu.Unlock()
}

// CatchUps implements adapters.CatchUpper.
func (a *Adapter) CatchUps() map[string]adapters.CatchUp {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]adapters.CatchUp, len(a.catchUps))
	for room, c := range a.catchUps {
		out[room] = c
	}
	return out
}

// cursorKey is where a channel's cursor is kept: by its name folded as
// RFC 1459 does, whatever the server's casemapping, which is not known
// before it is connected.
func cursorKey(channel string) string { return cursorKeyPrefix + caseRFC1459.fold(channel) }

func lineHash(m *bridge.Message) string {
	h := sha256.New()
	h.Write([]byte(m.Sender.Name))
	if m.Emote {
		h.Write([]byte{1})
	}
	h.Write([]byte{0})
	h.Write([]byte(m.Text))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func cursorOf(m *bridge.Message) cursor {
	return cursor{MsgID: m.Origin.RemoteID, Time: m.Time, Hash: lineHash(m)}
}

// loadCursor reads a channel's cursor; a channel with none is being
// linked now, and gets one that says so.
func (a *Adapter) loadCursor(ctx context.Context, channel string) (cursor, bool) {
	a.mu.Lock()
	st := a.state
	key := cursorKey(channel)
	a.mu.Unlock()
	start := cursor{Time: a.clock.Now()}
	if st == nil {
		return start, true // this run's lines only
	}
	v, ok, err := st.Get(ctx, key)
	if err == nil && !ok {
		b, _ := json.Marshal(start)
		if _, err = st.PutIfAbsent(ctx, key, string(b)); err == nil {
			return start, true
		}
	}
	if err != nil {
		a.log.Warn("cannot read where a channel's catch-up starts; none this time", "channel", channel, "err", err)
		return cursor{}, false
	}
	var c cursor
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		a.log.Warn("unreadable catch-up state; starting afresh", "channel", channel, "err", err)
		return start, true
	}
	return c, true
}

// forgetCursor drops an unlinked channel's cursor: linked again later,
// it starts afresh, without what was said in between.
func (a *Adapter) forgetCursor(ctx context.Context, channel string) {
	a.mu.Lock()
	st := a.state
	key := cursorKey(channel)
	a.mu.Unlock()
	if st == nil {
		return
	}
	if err := st.Delete(ctx, key); err != nil {
		a.log.Warn("cannot forget a channel's catch-up state", "channel", channel, "err", err)
	}
}

// onBatch takes a channel's join playback whole, for the bot's catch-up;
// puppets and people's connections, which join too, drop theirs. Left
// to the per-line callbacks, its lines would pass for live ones (and a
// line from our own nick for an echo). Other batches are left to them.
func (k *conn) onBatch(b *ircevent.Batch) bool {
	if len(b.Params) < 3 || b.Params[1] != chatHistoryBatch {
		return false
	}
	k.mu.Lock()
	history := k.caps.history
	k.mu.Unlock()
	if k.cfg.onHistory != nil && !history { // with draft/chathistory, its replies are the one source
		k.cfg.onHistory(b.Params[2], b.Items)
	}
	return true
}

// catchUp bridges the lines of a channel's playback said after the last
// one the adapter saw there, in order, marked as catch-up.
func (a *Adapter) catchUp(channel string, items []*ircevent.Batch) {
	a.catchUpFrom(channel, items, nil)
}

// catchUpFrom is catchUp after the line fromJoin (draft/chathistory:
// where the channel stood when the bot joined it), or after the last
// line seen when fromJoin is nil.
func (a *Adapter) catchUpFrom(channel string, items []*ircevent.Batch, fromJoin *cursor) {
	var lines []*bridge.Message
	a.mu.Lock()
	r := a.roomLocked(channel)
	if r == nil {
		a.mu.Unlock()
		return
	}
	for _, it := range items {
		e := it.Message
		if e.Command != "PRIVMSG" && e.Command != "NOTICE" {
			continue
		}
		if len(e.Params) < 2 || !a.info.cm.equal(e.Params[0], r.name) {
			continue
		}
		a.mu.Unlock()
		m := a.chatMessage(e, e.Command == "NOTICE") // takes a.mu
		a.mu.Lock()
		if m == nil {
			continue // our puppets' lines, another bridge's, CTCP
		}
		nick := e.Nick()
		m.Header = a.header(e, r.name, nick, a.accountLocked(r, nick))
		m.CatchUp = true
		m.Mentions = a.mentionsLocked(r, m.Text, nick)
		lines = append(lines, m)
	}
	if !r.catch.loaded {
		a.mu.Unlock()
		return // no idea what was seen: bridging could repeat it all
	}
	from := r.catch.seen
	// Live lines that came between the JOIN and a CHATHISTORY reply have
	// moved the cursor already: the reply is matched from the join's, and
	// the cursor stays at the latest line.
	moved := false
	if fromJoin != nil {
		from, moved = *fromJoin, r.catch.seen != *fromJoin
	}
	start := from.after(lines)
	if start == len(lines) && len(lines) > 0 && from.Hash == "" && from.MsgID == "" && !moved {
		// Linked now: the playback's last line is where the channel's
		// bridging starts.
		c := cursorOf(lines[len(lines)-1])
		r.catch.seen, r.catch.saved, r.catch.dirty = c, c, true
	}
	todo := a.capCatchUp(lines[start:], r.name)
	if len(todo) > 0 && !moved {
		r.catch.seen = cursorOf(todo[len(todo)-1])
	}
	if a.catchUps == nil {
		a.catchUps = map[string]adapters.CatchUp{}
	}
	a.catchUps[r.name] = adapters.CatchUp{At: a.clock.Now(), Recovered: len(todo)}
	a.mu.Unlock()
	if len(todo) > 0 {
		a.log.Info("catching up", "channel", r.name, "lines", len(todo), "played_back", len(lines))
	}
	for _, m := range todo {
		a.emit(m)
	}
}

// capCatchUp applies catch_up's bounds to what is to be bridged.
func (a *Adapter) capCatchUp(lines []*bridge.Message, channel string) []*bridge.Message {
	n := len(lines)
	oldest := a.clock.Now().Add(-a.cfg.CatchUp.MaxAge)
	for len(lines) > 0 && lines[0].Time.Before(oldest) {
		lines = lines[1:]
	}
	if max := max(a.cfg.CatchUp.MaxMessages, 0); len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	if dropped := n - len(lines); dropped > 0 {
		a.log.Warn("catch-up bounded by catch_up: older lines not bridged", "channel", channel, "dropped", dropped)
	}
	return lines
}

// after is the index of the first of lines said after c: past the line
// with c's msgid; without it (a server without msgid, or the line is out
// of the playback already), past every line of an earlier second and the
// line of c's second with c's sender and text. Lines of c's second
// without that match are bridged (better twice than lost), except after
// a link's start, which has no line: what was said before it is never
// bridged.
func (c cursor) after(lines []*bridge.Message) int {
	if c.MsgID != "" {
		for i, m := range lines {
			if m.Origin.RemoteID == c.MsgID {
				return i + 1
			}
		}
	}
	if c.Time.IsZero() {
		return len(lines)
	}
	sec := c.Time.Truncate(time.Second)
	start := 0
	for i, m := range lines {
		t := m.Time.Truncate(time.Second)
		switch {
		case t.Before(sec):
			start = i + 1
		case t.Equal(sec) && (c.Hash == "" || lineHash(m) == c.Hash):
			start = i + 1
		}
	}
	return start
}

// acceptedLine moves a channel's cursor past a line the router accepted.
func (a *Adapter) acceptedLine(ev bridge.Event) {
	m, ok := ev.(*bridge.Message)
	if !ok || m.To != nil || m.Origin.Network != a.name || m.Origin.Room == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.roomLocked(m.Origin.Room); r != nil && r.catch.loaded {
		r.catch.saved, r.catch.dirty = cursorOf(m), true
	}
}

// seenLine moves a channel's in-memory cursor past a live line handed to
// the router; a.mu must be held.
func (r *room) seenLineLocked(m *bridge.Message) {
	if r.catch.loaded {
		r.catch.seen = cursorOf(m)
	}
}

// flushCursors writes the cursors that moved, every cursorFlushEvery
// and once more when the adapter stops.
func (a *Adapter) flushCursors(ctx context.Context) {
	t := time.NewTicker(cursorFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			a.writeCursors(wctx)
			cancel()
			return
		case <-t.C:
			a.writeCursors(ctx)
		}
	}
}

func (a *Adapter) writeCursors(ctx context.Context) {
	type put struct{ key, channel, value string }
	var puts []put
	a.mu.Lock()
	st := a.state
	for _, r := range a.rooms {
		if r.catch.dirty {
			r.catch.dirty = false
			b, _ := json.Marshal(r.catch.saved)
			puts = append(puts, put{cursorKey(r.name), r.name, string(b)})
		}
	}
	a.mu.Unlock()
	if st == nil {
		return
	}
	for _, p := range puts {
		if err := st.Put(ctx, p.key, p.value); err != nil {
			a.log.Warn("cannot save a channel's catch-up state", "channel", p.channel, "err", err)
			a.mu.Lock()
			if r := a.roomLocked(p.channel); r != nil {
				r.catch.dirty = true
			}
			a.mu.Unlock()
		}
	}
}

// acceptHook tells the adapter of every event the router accepted, for
// the channels' cursors; it is the Inbound the accept queue hands events
// to.
type acceptHook struct {
	bridge.Inbound
	a *Adapter
}

func (h acceptHook) Commit(ctx context.Context, ev bridge.Event) (func(bool) error, error) {
	durable, err := bridge.Commit(ctx, h.Inbound, ev)
	if err == nil {
		h.a.acceptedLine(ev)
	}
	return durable, err
}

func (h acceptHook) Members(ctx context.Context, room bridge.RoomAddr, accounts []string) error {
	if ml, ok := h.Inbound.(bridge.MemberLister); ok {
		return ml.Members(ctx, room, accounts)
	}
	return nil
}
