package bridge

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit bounds what one sender may send into one room: PerSecond on
// average, Burst at once. A zero PerSecond means no limit.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// DropRateLimited is the reason Dropped counts messages over a sender's
// rate limit under.
const DropRateLimited = "rate_limited"

const (
	// replayAge: an event its network stamped longer ago than this is a
	// replay of history (a MUC's history, a Matrix transaction sent again
	// after an outage, messages a broker kept while Switchboard was
	// away), not someone typing now; the limit does not apply to it.
	replayAge = 30 * time.Second
	// tellEvery is how often a sender over the limit is told.
	tellEvery = time.Minute
	// sweepEvery is how often idle buckets are forgotten.
	sweepEvery = time.Minute
)

// limited says whether an event counts against its sender's limit: what
// people write, not what they do (joins, deletes, typing), which must stay
// consistent or is not shown.
func limited(ev Event) bool {
	switch ev.Kind() {
	case KindMessage, KindEdit, KindReaction, KindTopic:
		return true
	}
	return false
}

// limiter keeps a token bucket per sender per origin room.
type limiter struct {
	mu      sync.Mutex
	rates   map[string]RateLimit // by origin network
	senders map[limitKey]*senderLimit
	swept   time.Time
	dropped map[string]uint64 // by origin network
}

type limitKey struct {
	room   RoomAddr
	sender string
}

type senderLimit struct {
	bucket *rate.Limiter
	told   time.Time // when the sender was last told of a drop
}

// SetRate sets the limit on what each sender of network may send into
// each of its rooms. Call it before the network's adapter starts; a
// reload may call it again (buckets start afresh).
func (r *Router) SetRate(network string, l RateLimit) {
	lim := &r.limits
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if lim.rates == nil {
		lim.rates = map[string]RateLimit{}
		lim.senders = map[limitKey]*senderLimit{}
		lim.dropped = map[string]uint64{}
	}
	if l.PerSecond <= 0 {
		delete(lim.rates, network)
	} else {
		lim.rates[network] = RateLimit{PerSecond: l.PerSecond, Burst: max(l.Burst, 1)}
	}
	for k := range lim.senders {
		if k.room.Network == network {
			delete(lim.senders, k)
		}
	}
}

// Dropped counts, by origin network and reason, the inbound events the
// router dropped on purpose since it started.
func (r *Router) Dropped() map[string]map[string]uint64 {
	lim := &r.limits
	lim.mu.Lock()
	defer lim.mu.Unlock()
	out := make(map[string]map[string]uint64, len(lim.dropped))
	for n, c := range lim.dropped {
		out[n] = map[string]uint64{DropRateLimited: c}
	}
	return out
}

// allow takes a token for ev from its sender's bucket in room from. tell
// is true when the sender should be told of the drop (once per minute).
func (lim *limiter) allow(from RoomAddr, ev Event, now time.Time) (ok, tell bool, l RateLimit) {
	h := ev.Head()
	if !limited(ev) || h.CatchUp || (!h.Time.IsZero() && now.Sub(h.Time) > replayAge) {
		return true, false, l
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	l, on := lim.rates[from.Network]
	if !on {
		return true, false, l
	}
	if now.Sub(lim.swept) >= sweepEvery {
		lim.sweep(now)
	}
	k := limitKey{from, h.Sender.ID}
	s, found := lim.senders[k]
	if !found {
		s = &senderLimit{bucket: rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst)}
		lim.senders[k] = s
	}
	if s.bucket.AllowN(now, 1) {
		return true, false, l
	}
	lim.dropped[from.Network]++
	if now.Sub(s.told) >= tellEvery {
		s.told = now
		tell = true
	}
	return false, tell, l
}

// sweep forgets the buckets that are full again and whose sender was not
// told within the minute: such a bucket is the same as a new one.
func (lim *limiter) sweep(now time.Time) {
	lim.swept = now
	for k, s := range lim.senders {
		if s.bucket.TokensAt(now) >= float64(s.bucket.Burst()) && now.Sub(s.told) >= tellEvery {
			delete(lim.senders, k)
		}
	}
}

// rateLimited reports whether ev is over its sender's limit and dropped;
// the sender is told, through the bot of their own network, at most once
// a minute. Neither the log nor the notice carries the text.
func (r *Router) rateLimited(from RoomAddr, ev Event) bool {
	ok, tell, l := r.limits.allow(from, ev, time.Now())
	if ok {
		return false
	}
	h := ev.Head()
	if d, ok := r.Observer.(DropObserver); ok {
		d.Dropped(from.Network, DropRateLimited)
	}
	if !tell {
		r.log.Debug("message over its sender's rate limit dropped", "room", from.String(), "sender", h.Sender.ID)
		return true
	}
	r.log.Info("messages over their sender's rate limit are being dropped", "room", from.String(), "sender", h.Sender.ID,
		"per_second", l.PerSecond, "burst", l.Burst)
	text := fmt.Sprintf("You are sending faster than this bridge relays (%s messages a second, %d at once): messages to %s are being dropped. Slow down.",
		strconv.FormatFloat(l.PerSecond, 'f', -1, 64), l.Burst, from.Room)
	room := from.Room
	if h.To != nil {
		room = "" // a direct message's origin is no room
	}
	r.tellBot(h.Origin.Network, room, h.Sender.ID, text)
	return true
}

// tellBot has the bot of network tell user text: privately where the
// network has direct messages, else in room, addressed to user (an MQTT
// device reads its room's notices; room "" for none).
func (r *Router) tellBot(network, room, user, text string) {
	r.mu.Lock()
	net := r.networks[network]
	ctx := r.ctx
	r.mu.Unlock()
	bot, ok := net.(BotSender)
	if !ok || user == "" || ctx == nil {
		return
	}
	if _, dm := net.(DirectMessenger); dm {
		room = ""
	}
	if room != "" {
		text = user + ": " + text
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := bot.SendAsBot(ctx, room, user, text); err != nil {
			r.log.Warn("cannot tell a sender", "network", network, "sender", user, "err", err)
		}
	}()
}
