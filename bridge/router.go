package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// Router carries every event from its room to every other room of the
// room's link: it commits the event and one outbox entry per target room
// before the source is acknowledged, then one worker per target room
// delivers that room's entries, in order per sender (see lanes.go),
// retrying with backoff. A target that fails delays only its own room, and
// a sender whose deliveries wait (a flood, a long paste at the target's
// flood rate) delays only their own.
type Router struct {
	store Store
	links Links
	log   *slog.Logger

	// Backoff bounds the wait between delivery attempts to one room.
	MinBackoff, MaxBackoff time.Duration
	// Observer, when set (before Start), is told of every accept, delivery,
	// retry and permanent failure.
	Observer Observer
	// Ignore, when set (before Start), names the senders whose events are
	// dropped instead of bridged.
	Ignore Ignorer
	// People, when set (before Start), ties authenticated senders to the
	// configured people (see identify).
	People People
	// OnPresence, when set (before Start), is called after the rooms
	// where a person is changed (see PeopleRooms); it must not block.
	OnPresence func()
	// OnActive, when set (before Start), is called with a person's id for
	// each event of theirs from their home network that shows them at
	// their client there (see homeActivity); it must not block.
	OnActive func(person string)
	// OnBlocksChanged, when set (before Start), is called after each
	// block made or lifted here (Block, Unblock), not after ReloadBlocks;
	// it must not block. (Cluster mode tells the other instances.)
	OnBlocksChanged func()
	// Relink, when set (before Start), is called before a delivery to a
	// room that is in no link fails for good, and the room is looked up
	// again: it brings the Links up to date (cluster mode: another
	// instance may have linked the room a moment ago, and this one not
	// read the change yet). See linked.
	Relink func(ctx context.Context)

	limits   limiter
	acceptMu sync.Mutex
	// seqMu makes a commit and the unsynced mark it sets one step for a
	// worker that reads the outbox (RLock). heldMu guards held, the
	// committed entries waiting for the disk (see handover.go); unsynced
	// is the lowest seq among them, 0 for none.
	seqMu    sync.RWMutex
	heldMu   sync.Mutex
	held     []heldCommit
	unsynced atomic.Int64

	mu       sync.Mutex
	blockMu  sync.Mutex
	blocks   map[BlockKey]*blockState
	presMu   sync.Mutex
	present  map[PersonRoom]bool
	networks map[string]MessageSender
	queues   map[RoomAddr]*queue
	// Shared-store mode (see shared.go): gates are checked before each
	// delivery, runs are the networks' worker contexts.
	shared     bool
	wakeRemote func(RoomAddr)
	gates      map[string]func(Queued) bool
	filters    map[string]func(Queued) bool
	inGates    map[string]func() bool
	runs       map[string]*netRun
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

type queue struct {
	addr RoomAddr
	more chan struct{} // new entries were committed

	// online is closed when the network reconnects, waking every lane
	// that waits to retry, and replaced.
	onlineMu sync.Mutex
	online   chan struct{}

	// Entries committed while the worker keeps up are handed over here, so
	// that it need not read back what was just written. After a backlog
	// (at start, or when the room is slow) it reads from the store instead
	// until it has caught up.
	mu      sync.Mutex
	mem     []Queued // in seq order
	spilled bool     // entries may be in the store only
	// alwaysRead: the store is shared (see shared.go); entries are
	// always read from it.
	alwaysRead bool

	// begun and ended count the deliveries to the room sent on their way
	// to its network, and recorded (or failed, to be retried); settled is
	// closed, and replaced, each time one ends (see settledRef).
	begun, ended atomic.Int64
	settledMu    sync.Mutex
	settled      chan struct{}
}

// begin counts a delivery on its way; end counts it recorded (or
// failed, to be retried).
func (q *queue) begin() { q.begun.Add(1) }

func (q *queue) end() {
	q.ended.Add(1)
	q.settledMu.Lock()
	close(q.settled)
	q.settled = make(chan struct{})
	q.settledMu.Unlock()
}

// settledWake is closed when a delivery to the room is next recorded.
func (q *queue) settledWake() <-chan struct{} {
	q.settledMu.Lock()
	defer q.settledMu.Unlock()
	return q.settled
}

// memQueue bounds the entries a queue holds in memory.
const memQueue = 256

func (q *queue) push(items ...Queued) {
	q.mu.Lock()
	if q.alwaysRead {
		q.spilled = true
	} else if !q.spilled && len(q.mem)+len(items) <= memQueue {
		q.mem = append(q.mem, items...)
	} else {
		q.spilled, q.mem = true, nil
	}
	q.mu.Unlock()
	signal(q.more)
}

// NewRouter returns a router; add networks, then Start it.
func NewRouter(store Store, links Links, log *slog.Logger) *Router {
	return &Router{
		store:      store,
		links:      links,
		log:        log,
		MinBackoff: 250 * time.Millisecond,
		MaxBackoff: 30 * time.Second,
		networks:   map[string]MessageSender{},
		queues:     map[RoomAddr]*queue{},
		blocks:     map[BlockKey]*blockState{},
		present:    map[PersonRoom]bool{},
		gates:      map[string]func(Queued) bool{},
		filters:    map[string]func(Queued) bool{},
		inGates:    map[string]func() bool{},
		runs:       map[string]*netRun{},
	}
}

// AddNetwork makes a network a delivery target. Its capability interfaces
// decide how each event kind reaches it.
func (r *Router) AddNetwork(name string, s MessageSender) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.networks[name] = s
	if r.ctx != nil {
		r.wakeLocked(name)
	}
	if r.shared && r.ctx != nil {
		// Taken over from another instance: its rooms' outboxes.
		ctx := r.ctx
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.WakePending(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("read outbox", "network", name, "err", err)
			}
		}()
	}
}

// Start resumes delivery of everything the outbox holds.
func (r *Router) Start(ctx context.Context) error {
	if err := r.loadBlocks(ctx); err != nil {
		return err
	}
	if err := r.loadPresence(ctx); err != nil {
		return err
	}
	targets, err := r.store.PendingTargets(ctx)
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, q := range r.queues { // made by Accept calls before Start
		r.startLocked(q)
	}
	for _, t := range targets {
		if r.deliversLocked(t.Network) {
			r.queueLocked(t)
		}
	}
	return nil
}

// Stop ends delivery and waits for the workers. What was not delivered
// stays in the outbox for the next start.
func (r *Router) Stop() {
	r.mu.Lock()
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
}

// Online implements Inbound: deliveries waiting for network are retried now.
func (r *Router) Online(network string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wakeLocked(network)
}

func (r *Router) wakeLocked(network string) {
	for addr, q := range r.queues {
		if addr.Network == network {
			q.reconnected()
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Accept implements Inbound.
func (r *Router) Accept(ctx context.Context, ev Event) error {
	durable, err := r.Commit(ctx, ev)
	if err != nil {
		return err
	}
	return durable(true)
}

// Commit implements Committer.
func (r *Router) Commit(ctx context.Context, ev Event) (durable func(now bool) error, err error) {
	from := Addr(ev)
	if r.inboundRefused(from.Network) {
		return nil, fmt.Errorf("%s from %s: %w", ev.Kind(), from.Network, ErrNotHolder)
	}
	link, rooms, ok := r.links.LinkOf(from)
	if to := ev.Head().To; to != nil {
		// A direct event goes to its one recipient, whatever the links.
		if to.Network == "" || to.ID == "" {
			r.log.Warn("direct event without a recipient dropped", "from", from.Network)
			return Committed, nil
		}
		// Each side of a conversation is keyed by the remote person, so that
		// the ids of what they sent and were sent resolve in one place.
		h := ev.Head()
		if !r.personTo(to) {
			r.log.Debug("direct event to a person without an account on the network dropped", "network", to.Network, "to", to.ID)
			return Committed, nil
		}
		h.Origin.Room = DirectRoom(h.Sender).Room
		link, rooms, ok, from = DirectLink, []RoomAddr{DirectRoom(*to)}, true, Addr(ev)
	}
	if !ok {
		r.log.Debug("event from unlinked room dropped", "room", from.String(), "kind", ev.Kind())
		return Committed, nil
	}
	if r.ignored(link, from, ev) {
		return Committed, nil
	}
	if r.rateLimited(from, ev) {
		return Committed, nil // before anything is written
	}
	// After the ignore lists, which match the name the network shows.
	if !r.identify(ev) {
		return Committed, nil
	}
	r.identifyMentions(ev)
	if r.OnActive != nil {
		if person := homeActivity(ev); person != "" {
			r.OnActive(person)
		}
	}
	Clean(ev)
	h := ev.Head()
	if h.ID == "" {
		h.ID = NewEventID()
	}
	if h.Time.IsZero() {
		h.Time = time.Now().UTC()
	}
	if ok, err := r.resolve(ctx, from, ev); err != nil {
		return nil, err
	} else if !ok {
		return Committed, nil
	}
	targets := make([]RoomAddr, 0, len(rooms)-1)
	for _, room := range rooms {
		if room != from {
			targets = append(targets, room)
		}
	}
	// Held from commit to hand-over, so that each queue receives its
	// entries in commit order.
	r.acceptMu.Lock()
	began := time.Now()
	r.seqMu.Lock()
	queued, accepted, durable, err := r.commit(ctx, link, ev, targets)
	if err == nil && accepted {
		r.handOver(queued, durable)
	}
	r.seqMu.Unlock()
	r.acceptMu.Unlock()
	if r.Observer != nil {
		r.Observer.Stored("accept", time.Since(began), err)
	}
	if err == nil && accepted && runtime.GOMAXPROCS(0) == 1 {
		// The deliveries just queued go out first, before the caller's
		// next step and the store's disk sync would hold the only P.
		// (With more Ps, another takes them.)
		runtime.Gosched()
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s from %s: %w", ev.Kind(), from, err)
	}
	// A duplicate too: it says the same of where its sender is.
	r.notePresence(ctx, from, ev)
	if durable == nil {
		durable = Committed
	} else {
		synced := durable
		durable = func(now bool) error {
			if err := synced(now); err != nil {
				return fmt.Errorf("commit %s from %s: %w", ev.Kind(), from, err)
			}
			return nil
		}
	}
	if !accepted {
		// A duplicate still waits: the first copy may not be on disk yet.
		r.log.Debug("duplicate event dropped", "room", from.String(), "remote_id", h.Origin.RemoteID)
		return durable, nil
	}
	if r.Observer != nil {
		r.Observer.Accepted(from, ev.Kind())
	}
	if d, ok := ev.(*Delete); ok {
		r.removeContent(d.Target.Event)
	}
	return durable, nil
}

// removeContent has the store forget what a deleted message (by its
// author or a moderator) said, off the accept path: it is a write of its own.
func (r *Router) removeContent(id EventID) {
	cr, ok := r.store.(ContentRemover)
	r.mu.Lock()
	ctx := r.ctx
	r.mu.Unlock()
	if !ok || id == "" || ctx == nil {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := cr.RemoveContent(ctx, id); err != nil && ctx.Err() == nil {
			r.log.Warn("could not remove a deleted message's contents from the store; retention will", "event", id, "err", err)
		}
	}()
}

// commit is the store's Accept, returning before the disk sync where the
// store can (see EarlyStore).
func (r *Router) commit(ctx context.Context, link string, ev Event, targets []RoomAddr) ([]Queued, bool, func(now bool) error, error) {
	if es, ok := r.store.(EarlyStore); ok {
		return es.AcceptCommitted(ctx, link, ev, targets)
	}
	queued, accepted, err := r.store.Accept(ctx, link, ev, targets)
	return queued, accepted, nil, err
}

// ErrNoFailedList says the store keeps no failed list to work on.
var ErrNoFailedList = errors.New("the store cannot list, retry or discard failed deliveries")

// Retry queues a delivery that failed for good again, behind what waits
// for its room (in its sender's lane, it goes out after what its sender
// sent before), and returns it as queued.
func (r *Router) Retry(ctx context.Context, seq int64) (Queued, error) {
	fs, ok := r.store.(FailedStore)
	if !ok {
		return Queued{}, ErrNoFailedList
	}
	// As in Accept: each queue receives its entries in commit order.
	r.acceptMu.Lock()
	defer r.acceptMu.Unlock()
	item, err := fs.Requeue(ctx, seq)
	if err != nil {
		return Queued{}, err
	}
	r.handOver([]Queued{item}, nil)
	r.log.Info("failed delivery queued again", "seq", seq, "new_seq", item.Seq, "room", item.Target.String())
	return item, nil
}

// resolve turns the remote ids an adapter filled into event ids, and
// refuses edits and deletes of someone else's message, but for a
// moderator's delete.
func (r *Router) resolve(ctx context.Context, from RoomAddr, ev Event) (bool, error) {
	if m, ok := ev.(*Message); ok {
		ref, err := r.settledRef(ctx, from, m.ReplyTo)
		if err != nil {
			return false, err
		}
		m.ReplyTo = ref // a reply to something never bridged is a plain message
		if !m.Thread.IsZero() {
			if m.Thread, err = r.settledRef(ctx, from, m.Thread); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	target, ok := Target(ev)
	if !ok {
		return true, nil
	}
	ref, err := r.settledRef(ctx, from, target)
	if err != nil {
		return false, err
	}
	if ref.Event == "" {
		r.log.Debug("event about an unknown message dropped", "room", from.String(), "kind", ev.Kind())
		return false, nil
	}
	SetTarget(ev, ref)
	if ev.Kind() == KindEdit || ev.Kind() == KindDelete {
		orig, err := r.store.Event(ctx, ref.Event)
		if err != nil {
			return false, fmt.Errorf("load %s: %w", ref.Event, err)
		}
		by, of := ev.Head().Sender, orig.Head().Sender
		// A person's message is theirs from any of their accounts.
		own := by.Network == of.Network && by.ID == of.ID || by.Person != "" && by.Person == of.Person
		d, isDelete := ev.(*Delete)
		switch {
		case own && isDelete:
			d.Moderator = false // an author's deletion, whatever their power
		case isDelete && d.Moderator:
			r.log.Info("a moderator deleted someone else's message",
				"room", from.String(), "by", by.ID, "author", of.ID, "event", ref.Event)
		case !own:
			r.log.Warn("refused to bridge a change to someone else's message",
				"kind", ev.Kind(), "room", from.String(), "by", by.ID, "author", of.ID)
			if ro, ok := r.Observer.(RefusalObserver); ok {
				ro.Refused(from, ev.Kind())
			}
			return false, nil
		}
	}
	return true, nil
}

// settleWait bounds how long an event that refers to a message the room
// does not know yet waits for the deliveries to it that are on their way.
const settleWait = 10 * time.Second

// settledRef is resolveRef that, for a remote id the room does not know
// yet, waits until the deliveries to the room that were on their way
// when it was asked are recorded, and looks again: a room shows a
// delivered message a moment before its network answers the send with
// the id it gave it, and an edit, reply or redaction of it in that moment
// (an anti-spam bot is quick) would otherwise find nothing to refer to.
// It waits for as many deliveries to end as were on their way, which in
// a busy room may be later ones: it never waits for a room's traffic to
// stop.
func (r *Router) settledRef(ctx context.Context, from RoomAddr, ref Ref) (Ref, error) {
	r.mu.Lock()
	q := r.queues[from]
	r.mu.Unlock()
	if q == nil || ref.Remote == "" || ref.Event != "" {
		return r.resolveRef(ctx, from, ref)
	}
	until := q.begun.Load() // as many ends as there were beginnings by now
	deadline := time.Now().Add(settleWait)
	for {
		// Both before the lookup: no wakeup, and no end that made the id
		// known, is missed.
		wake, settled := q.settledWake(), q.ended.Load() >= until
		got, err := r.resolveRef(ctx, from, ref)
		if err != nil || got.Event != "" || settled {
			return got, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return got, nil
		}
		t := time.NewTimer(left)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Ref{}, ctx.Err()
		}
		t.Stop()
	}
}

func (r *Router) resolveRef(ctx context.Context, from RoomAddr, ref Ref) (Ref, error) {
	switch {
	case ref.IsZero():
		return ref, nil
	case ref.Event != "":
		if _, err := r.store.Event(ctx, ref.Event); errors.Is(err, ErrNotFound) {
			return Ref{}, nil
		} else if err != nil {
			return Ref{}, err
		}
		return ref, nil
	}
	id, err := r.store.EventByRemote(ctx, from, ref.Remote)
	if errors.Is(err, ErrNotFound) {
		return Ref{}, nil
	}
	if err != nil {
		return Ref{}, err
	}
	return Ref{Event: id, Remote: ref.Remote}, nil
}

func (r *Router) queueLocked(addr RoomAddr) *queue {
	q, ok := r.queues[addr]
	if ok {
		return q
	}
	q = &queue{addr: addr, more: make(chan struct{}, 1), online: make(chan struct{}), spilled: true, settled: make(chan struct{}), alwaysRead: r.shared}
	r.queues[addr] = q
	if r.ctx != nil {
		r.startLocked(q)
	}
	signal(q.more)
	return q
}

// batchSize is how many queued entries a worker reads at once.
const batchSize = 64

// next returns the entries after seq last: those handed over in memory,
// or, after a backlog, the next ones in the store.
func (r *Router) next(ctx context.Context, q *queue, last int64) ([]Queued, error) {
	q.mu.Lock()
	if !q.spilled {
		batch := q.mem
		q.mem = nil
		q.mu.Unlock()
		return batch, nil
	}
	q.mu.Unlock()
	batch, cut, err := r.pending(ctx, q.addr, last)
	if err != nil || len(batch) == batchSize {
		return batch, err
	}
	if cut {
		return batch, nil // the rest is pushed once on disk
	}
	// Caught up: take hand-overs again. An entry committed after the read
	// above is in neither; reading once more after the switch finds it,
	// and anything found both ways is skipped by its seq.
	q.mu.Lock()
	if q.alwaysRead {
		q.mu.Unlock()
		return batch, nil
	}
	q.spilled, q.mem = false, nil
	q.mu.Unlock()
	after := last
	if len(batch) > 0 {
		after = batch[len(batch)-1].Seq
	}
	// What is cut is pushed once on disk, as a hand-over.
	more, _, err := r.pending(ctx, q.addr, after)
	if err != nil || len(more) == batchSize { // not caught up after all
		q.mu.Lock()
		q.spilled, q.mem = true, nil
		q.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return append(batch, more...), nil
}

// deliverWithRetry delivers one entry, retrying until it is delivered,
// fails for good, or ctx ends (false).
func (r *Router) deliverWithRetry(ctx context.Context, log *slog.Logger, q *queue, item Queued) bool {
	b := r.backoff()
	for attempt := 0; ; attempt++ {
		// Taken before the attempt: a reconnect during it still wakes
		// the wait after it.
		online := q.onlineWake()
		q.begin()
		remoteID, err := r.deliver(ctx, item)
		settled, ok := r.record(ctx, log, item, remoteID, err)
		q.end()
		if !ok {
			return false
		}
		if settled {
			return true
		}
		wait := b.Next()
		log.Log(ctx, retryLevel(err), "delivery failed, will retry", "event", item.Event.Head().ID, "attempt", attempt+1, "in", wait, "err", err)
		// A network that reconnects is tried again at once.
		if !b.Sleep(ctx, wait, online) {
			return false
		}
	}
}

// retryLevel is the level a failed delivery that will be retried is
// logged at: a network that is not connected says so itself (see
// ErrNotConnected).
func retryLevel(err error) slog.Level {
	if errors.Is(err, ErrNotConnected) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// record settles the outcome of one attempt to deliver item: delivered
// (err nil) or failed for good are recorded in the store (settled); any
// other error is to be retried. ok is false when ctx ended.
func (r *Router) record(ctx context.Context, log *slog.Logger, item Queued, remoteID string, err error) (settled, ok bool) {
	switch {
	case err == nil:
		if !r.settle(ctx, log, "delivered", func() error { return r.store.Delivered(ctx, item, remoteID) }) {
			return false, false
		}
		if r.Observer != nil {
			r.Observer.Delivered(item.Target, item.Event.Kind(), item.Event.Head().Time)
		}
		return true, true
	case errors.Is(err, ErrPermanent):
		log.Error("delivery failed for good", "event", item.Event.Head().ID, "sender", item.Event.Head().Sender.Ref().String(), "err", err)
		if !r.settle(ctx, log, "failed", func() error { return r.store.Failed(ctx, item, err.Error()) }) {
			return false, false
		}
		if r.Observer != nil {
			r.Observer.Failed(item.Target, item.Event.Kind())
		}
		if item.Event.Head().To != nil {
			r.tellSender(item, err)
		} else if errors.Is(err, ErrBlocked) {
			// The room's network refused the sender (their puppet
			// found itself banned) and the adapter reported the block:
			// they are told now, as they would be by the router.
			if b, tell, ok := r.blocked(item.Target, item.Event); ok && tell {
				r.tellBlocked(item, b)
			}
		}
		return true, true
	case ctx.Err() != nil:
		return false, false
	}
	if r.Observer != nil {
		r.Observer.Retried(item.Target, item.Event.Kind())
	}
	return false, true
}

// pipeline delivers the messages of one lane that feed hands it, to a
// room whose network confirms asynchronously: each is written while the
// ones before it await their confirmation, and reported settled when its
// confirmation arrives. It ends when feed is closed and everything
// written is settled, or after a failure: it then writes nothing more,
// settles what is confirmed of what it wrote, and reports its end as
// failed; the lane delivers the rest one at a time with
// deliverWithRetry's backoff, in order, so a retry resends only what was
// not confirmed. A message confirmed after one that failed (refused by
// the room, or lost with the connection while the next got through)
// stays delivered: it is in the room, and is not sent twice.
func (r *Router) pipeline(ctx context.Context, log *slog.Logger, q *queue, l *lane, feed <-chan Queued, report func(laneDone)) {
	type flight struct {
		item    Queued
		confirm Confirm
	}
	flights := make(chan flight, pipelineDepth)
	failed := make(chan struct{})
	settler := make(chan struct{})
	go func() {
		defer close(settler)
		fail := false
		for f := range flights {
			remoteID, err := f.confirm(ctx)
			settled, ok := r.record(ctx, log, f.item, remoteID, err)
			q.end()
			switch {
			case !ok:
				return // ctx ended
			case settled:
				report(laneDone{lane: l, seq: f.item.Seq, ok: true})
			case !fail:
				fail = true
				close(failed)
				log.Log(ctx, retryLevel(err), "delivery failed, will retry one at a time", "event", f.item.Event.Head().ID, "err", err)
			}
		}
	}()
	write := func() {
		defer close(flights)
		for {
			select {
			case item, open := <-feed:
				if !open {
					return
				}
				select {
				case <-failed:
					return
				default:
				}
				q.begin()
				flights <- flight{item, r.start(ctx, item)}
			case <-failed:
				return
			case <-ctx.Done():
				return
			}
		}
	}
	write()
	<-settler
	select {
	case <-failed:
		report(laneDone{lane: l, end: true, failed: true, ok: ctx.Err() == nil})
	default:
		report(laneDone{lane: l, end: true, ok: ctx.Err() == nil})
	}
}

// tellSender lets the author of a direct message that failed for good
// know, through the bot of their own network: a message that silently
// went nowhere would look delivered.
func (r *Router) tellSender(item Queued, failure error) {
	h := item.Event.Head()
	to := h.To.Shown(NoticeDelims)
	reason := strings.TrimPrefix(failure.Error(), ErrPermanent.Error()+": ")
	text := fmt.Sprintf("Your message to %s (%s) was not delivered: %s.", to, h.To.Network, reason)
	r.tellBot(h.Origin.Network, "", h.Sender.ID, text)
}

// settle records a delivery's outcome, retrying the store until it works:
// forgetting it would deliver the event again.
func (r *Router) settle(ctx context.Context, log *slog.Logger, op string, record func() error) bool {
	b := r.backoff()
	for {
		began := time.Now()
		err := record()
		if r.Observer != nil {
			r.Observer.Stored(op, time.Since(began), err)
		}
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Error("record delivery", "err", err)
		if !b.Wait(ctx, nil) {
			return false
		}
	}
}

// backoff paces the retries of one delivery or store write.
func (r *Router) backoff() *backoff.Backoff { return backoff.New(r.MinBackoff, r.MaxBackoff) }

// errNoNetwork is retried: the network may be added (or reconnect) later.
var errNoNetwork = errors.New("network not running")

// deliver hands one entry to its network and waits until it is
// delivered.
func (r *Router) deliver(ctx context.Context, item Queued) (string, error) {
	return r.start(ctx, item)(ctx)
}

// start hands one entry to its network in the form the network
// understands, with the references resolved to that room's ids. A
// message a Pipeliner takes returns once written, with the confirmation
// to wait for; everything else returns once delivered.
func (r *Router) start(ctx context.Context, item Queued) Confirm {
	net, may := r.networkGate(item.Target.Network)
	if net == nil {
		return Settled("", fmt.Errorf("%s: %w", item.Target.Network, errNoNetwork))
	}
	if may != nil && !may(item) {
		return Settled("", fmt.Errorf("%s: %w", item.Target.Network, errNotHolder))
	}
	if item.Event.Head().To == nil {
		// Taken out of its link (API, chat command, reload) while this
		// waited: adapters have left the room, and delivering would only
		// bring them back.
		if !r.linked(ctx, item.Target) {
			return Settled("", Permanent(fmt.Errorf("%s is no longer linked", item.Target)))
		}
	}
	if keepsOut(item.Event) {
		if b, tell, ok := r.blocked(item.Target, item.Event); ok {
			return Settled(r.refuseBlocked(item, b, tell))
		}
	}
	d := &Delivery{Link: item.Link, Room: item.Target.Room, Event: item.Event}
	if rr, ok := r.links.(RelayRooms); ok {
		d.Relay = rr.Relayed(item.Target)
	}
	if item.Event.Head().To != nil {
		if _, ok := net.(DirectMessenger); !ok {
			return Settled("", Permanent(fmt.Errorf("%s has no direct messages", item.Target.Network)))
		}
		d.Room = ""
	}
	if pl, ok := net.(Pipeliner); ok && pipelined(item) {
		confirm, err := pl.SendPipelined(ctx, d)
		if err != nil {
			return Settled("", err)
		}
		return confirm
	}
	return Settled(r.send(ctx, net, item, d))
}

func (r *Router) networkGate(name string) (MessageSender, func(Queued) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.networks[name], r.gates[name]
}

func (r *Router) network(name string) MessageSender {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.networks[name]
}

// pipelined tells whether item is delivered through SendPipelined where
// its network offers it: a room message that is not a reply (a reply
// needs the remote id of what it quotes, which may still be on its way).
func pipelined(item Queued) bool {
	m, ok := item.Event.(*Message)
	return ok && m.To == nil && m.ReplyTo.Event == "" && m.Thread.Event == "" && !IsRoomNotice(m)
}

// send delivers d, built from item, through the capability of net that
// fits the event, or its fallback.
func (r *Router) send(ctx context.Context, net MessageSender, item Queued, d *Delivery) (string, error) {
	switch e := item.Event.(type) {
	case *Message:
		if IsRoomNotice(e) {
			if bs, ok := net.(BotSender); ok {
				return "", bs.SendAsBot(ctx, item.Target.Room, "", e.Text)
			}
			return "", nil // a network with no voice of its own
		}
		if e.Mentions != nil {
			d.Event = r.mentionsFor(e, item.Target.Network)
		}
		if e.Thread.Event != "" {
			thread, err := r.remoteID(ctx, item.Target, e.Thread.Event)
			if err != nil {
				return "", err
			}
			d.Thread = thread
		}
		if e.ReplyTo.Event != "" {
			quote, err := r.quote(ctx, item.Target, e.ReplyTo.Event)
			if err != nil {
				return "", err
			}
			if quote.SenderName == "" && quote.Text == "" {
				return net.Send(ctx, d) // the original is gone: a plain message
			}
			d.Reply = quote
			if rp, ok := net.(Replier); ok {
				return rp.SendReply(ctx, d)
			}
			d.Event = ReplyFallback(d.Event.(*Message), quote)
		}
		return net.Send(ctx, d)
	case *Edit:
		target, err := r.remoteID(ctx, item.Target, e.Target.Event)
		if err != nil {
			return "", err
		}
		d.Target = target
		if ed, ok := net.(Editor); ok && target != "" {
			return ed.SendEdit(ctx, d)
		}
		d.Event = editFallback(e)
		return net.Send(ctx, d)
	case *Delete:
		target, err := r.remoteID(ctx, item.Target, e.Target.Event)
		if err != nil {
			return "", err
		}
		d.Target = target
		if del, ok := net.(Deleter); ok && target != "" {
			return "", del.SendDelete(ctx, d)
		}
		return "", nil // a retraction has no meaningful fallback
	case *Reaction:
		target, err := r.remoteID(ctx, item.Target, e.Target.Event)
		if err != nil {
			return "", err
		}
		d.Target = target
		re, native := net.(Reactor)
		if e.Remove && !native {
			return "", nil
		}
		// A Reactor gets the quote too, for the text it may send along.
		quote, err := r.quote(ctx, item.Target, e.Target.Event)
		if err != nil {
			return "", err
		}
		d.Reply = quote
		if native {
			return re.SendReaction(ctx, d)
		}
		d.Event = ReactionFallback(e, quote)
		return net.Send(ctx, d)
	case *Join, *Leave, *Rename:
		if mr, ok := net.(MemberRelayer); ok {
			return "", mr.SendMembership(ctx, d)
		}
		return "", nil
	case *Topic:
		if ts, ok := net.(TopicSetter); ok {
			err := ts.SendTopic(ctx, d)
			if !errors.Is(err, ErrFallback) {
				return "", err
			}
		}
		d.Event = topicFallback(e)
		return net.Send(ctx, d)
	case *Typing:
		if tr, ok := net.(TypingRelayer); ok {
			return "", tr.SendTyping(ctx, d)
		}
		return "", nil
	case *Presence:
		if pr, ok := net.(PresenceRelayer); ok {
			return "", pr.SendPresence(ctx, d)
		}
		return "", nil
	case *Read:
		target, err := r.remoteID(ctx, item.Target, e.Target.Event)
		if err != nil {
			return "", err
		}
		d.Target = target
		if rm, ok := net.(ReadMarker); ok && target != "" {
			return "", rm.SendRead(ctx, d)
		}
		return "", nil // a read marker has no meaningful fallback
	}
	return "", Permanent(fmt.Errorf("unknown event kind %q", item.Event.Kind()))
}

func (r *Router) remoteID(ctx context.Context, room RoomAddr, id EventID) (string, error) {
	remote, err := r.store.RemoteID(ctx, room, id)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return remote, err
}

// quote describes the message id refers to, as the target room knows it.
func (r *Router) quote(ctx context.Context, room RoomAddr, id EventID) (*Quote, error) {
	ev, err := r.store.Event(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return &Quote{}, nil
	}
	if err != nil {
		return nil, err
	}
	remote, err := r.remoteID(ctx, room, id)
	if err != nil {
		return nil, err
	}
	q := &Quote{RemoteID: remote, SenderName: ev.Head().Sender.Shown(nil)}
	switch m := ev.(type) {
	case *Message:
		q.Text = Excerpt(m.Text, excerptRunes)
	case *Edit:
		q.Text = Excerpt(m.Text, excerptRunes)
	}
	return q, nil
}
