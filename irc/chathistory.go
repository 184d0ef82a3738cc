package irc

// draft/chathistory: where the server offers it (with labeled-response,
// which tells its replies from a join playback), the bot asks, on
// joining a channel it has a position for, for what was said after that
// position (CHATHISTORY AFTER), page by page while full pages come, up
// to catch_up.max_messages, and hands the lines to the same catch-up as
// a join playback (catchup.go). A join playback, if the server sends one
// too, is then dropped: one source, not two.
//
// No server the tests can run offers it (InspIRCd 3 does not), so this
// is tested against a scripted server only.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ergochat/irc-go/ircevent"
)

const (
	chatHistoryCap = "draft/chathistory"
	// chatHistoryWait bounds the wait for one page.
	chatHistoryWait = 30 * time.Second
	// chatHistoryTime is the spec's timestamp form (UTC, milliseconds).
	chatHistoryTime = "2006-01-02T15:04:05.000Z"
)

// historyRequest is the parameters of the CHATHISTORY AFTER asking for
// up to limit lines of channel after from: by its msgid where it has
// one, else by its time.
func historyRequest(channel string, from cursor, limit int) []string {
	ref := "timestamp=" + from.Time.UTC().Format(chatHistoryTime)
	if from.MsgID != "" {
		ref = "msgid=" + from.MsgID
	}
	return []string{"AFTER", channel, ref, strconv.Itoa(limit)}
}

// pageLimit is how many lines the next page asks for: what is left of
// want, at most the server's limit (ISUPPORT CHATHISTORY, 0 for none).
func pageLimit(serverMax, want, got int) int {
	n := want - got
	if serverMax > 0 && serverMax < n {
		n = serverMax
	}
	return n
}

// nextPage says whether to ask for another page after page, which
// asked for limit lines, got items in all out of want, and from where:
// the page's last item. A short page is the end of the history.
func nextPage(page []*ircevent.Batch, limit, got, want int) (cursor, bool) {
	if len(page) == 0 || len(page) < limit || got >= want {
		return cursor{}, false
	}
	last := page[len(page)-1]
	var c cursor
	if ok, id := last.GetTag("msgid"); ok {
		c.MsgID = id
	}
	if ok, ts := last.GetTag("time"); ok {
		c.Time, _ = time.Parse(time.RFC3339Nano, ts)
	}
	return c, c.MsgID != "" || !c.Time.IsZero()
}

// historyItems are the lines of the chathistory batch in a labeled
// reply (the batch itself, or inside a labeled-response batch); a FAIL
// or error numeric is the server's refusal.
func historyItems(b *ircevent.Batch) ([]*ircevent.Batch, error) {
	if b == nil {
		return nil, errors.New("irc: no answer to CHATHISTORY")
	}
	switch c := b.Command; {
	case c == "BATCH" && len(b.Params) >= 2 && b.Params[1] == chatHistoryBatch:
		return b.Items, nil
	case c == "FAIL" || len(c) == 3 && (c[0] == '4' || c[0] == '5'):
		return nil, &refusal{code: c, text: lastParam(b.Message)}
	}
	for _, it := range b.Items {
		if items, err := historyItems(it); err != nil || items != nil {
			return items, err
		}
	}
	return nil, nil
}

// chatHistory sends one CHATHISTORY request and waits for its reply.
func (k *conn) chatHistory(ctx context.Context, params []string) ([]*ircevent.Batch, error) {
	if err := k.bucket.wait(ctx); err != nil {
		return nil, err
	}
	k.mu.Lock()
	dead := k.dead
	k.mu.Unlock()
	reply := make(chan *ircevent.Batch, 1)
	if err := k.irc.SendWithLabel(func(b *ircevent.Batch) { reply <- b }, nil, "CHATHISTORY", params...); err != nil {
		return nil, err
	}
	t := time.NewTimer(chatHistoryWait)
	defer t.Stop()
	select {
	case b := <-reply:
		items, err := historyItems(b)
		if err == nil && items == nil {
			items = []*ircevent.Batch{} // an answer without lines: nothing missed
		}
		return items, err
	case <-dead:
		return nil, errNotConnected
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("irc: no answer to CHATHISTORY in %v", chatHistoryWait)
	}
}

// joinedHistory starts a channel's catch-up by draft/chathistory once
// the bot is in it, where the server offers it; it runs in the read loop.
func (a *Adapter) joinedHistory(k *conn, channel string) {
	k.mu.Lock()
	history := k.caps.history
	k.mu.Unlock()
	if !history || a.cfg.CatchUp.MaxMessages <= 0 {
		return
	}
	a.mu.Lock()
	r := a.roomLocked(channel)
	if r == nil || !r.catch.loaded || a.stopped {
		a.mu.Unlock()
		return
	}
	from := r.catch.seen
	serverMax := a.info.chatHistory
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		a.fetchHistory(k, r.name, from, serverMax)
	}()
}

// fetchHistory asks for what channel had after from, and catches up
// with it.
func (a *Adapter) fetchHistory(k *conn, channel string, from cursor, serverMax int) {
	want := a.cfg.CatchUp.MaxMessages
	ref := from
	if oldest := a.clock.Now().Add(-a.cfg.CatchUp.MaxAge); ref.Time.Before(oldest) {
		ref = cursor{Time: oldest} // nothing older is bridged anyway
	}
	var items []*ircevent.Batch
	for {
		limit := pageLimit(serverMax, want, len(items))
		page, err := k.chatHistory(a.ctx, historyRequest(channel, ref, limit))
		if err != nil {
			a.log.Warn("cannot fetch the channel's history", "channel", channel, "err", err, "fetched", len(items))
			if items == nil {
				return
			}
			break
		}
		items = append(items, page...)
		next, more := nextPage(page, limit, len(items), want)
		if !more {
			if len(page) == limit && len(items) >= want {
				a.log.Warn("catch-up bounded by catch_up.max_messages: later lines not fetched", "channel", channel, "fetched", len(items))
			}
			break
		}
		ref = next
	}
	a.catchUpFrom(channel, items, &from)
}
