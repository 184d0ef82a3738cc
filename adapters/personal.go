package adapters

import (
	"context"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// Personal keeps the personal connections of one adapter (see people.go):
// one per person, started and stopped as UsePeople lists them, kept up
// with backoff (a refused login only rarely tried again), their state for
// PersonalStatus, the wait of a message for a connection coming up, and
// the rooms each is to be in (PersonalRooms). What is protocol (logging
// in, serving a connection, joining and leaving a room) the adapter gives
// it as PersonalHooks. C is the adapter's connection (nil while there is
// none), X what else the adapter keeps per person.
//
// A nil *Personal has no people (an adapter built bare in a unit test).
//
// It shares the adapter's lock: methods named Locked, and the hooks named
// Locked, run with it held; the others take it. Its goroutines count in
// the adapter's WaitGroup, so that the adapter's Stop waits for them.
type Personal[C comparable, X any] struct {
	mu *sync.Mutex
	wg *sync.WaitGroup
	h  PersonalHooks[C, X]

	// guarded by mu
	ctx              context.Context // the adapter's, from StartLocked
	started, stopped bool
	people           map[string]*Person[C, X]
	wants            RoomWants         // the rooms each person's connection is to be in
	away             map[string]string // the away message of each person who is away (PersonalAway)
}

// PersonalHooks are the protocol part of personal connections.
type PersonalHooks[C comparable, X any] struct {
	// Noun names a connection in the logs ("personal connection").
	Noun string
	// Log is the adapter's logger, asked each time (tests set their own
	// after the adapter is made).
	Log func() *slog.Logger
	// Clock times the backoffs and the wait for a connection (nil: real
	// time).
	Clock backoff.Clock
	// Retry is the backoff between connections of one person, made once
	// per person when it starts; it starts again from its minimum once a
	// connection has stayed up (backoff.Connected).
	Retry func() *backoff.Backoff

	// Connect makes one connection of p's and serves it until it drops
	// or ctx ends. Once the connection is logged in it calls UpLocked,
	// and once it is down DownLocked.
	Connect func(ctx context.Context, p *Person[C, X]) PersonalEnd
	// DroppedLocked lets go of p, no longer listed (its context is
	// already cancelled).
	DroppedLocked func(p *Person[C, X])
	// SyncLocked is how p's connection c, up, leaves the rooms of part
	// and joins those of join it is not in yet (only the bridged ones):
	// it returns the work to do once the lock is released.
	SyncLocked func(p *Person[C, X], c C, part, join []string) (work func())
	// AwayLocked, when set, is how p's connection c, up, says the person
	// is away with message, or back when message is "": it returns the
	// work to do once the lock is released.
	AwayLocked func(p *Person[C, X], c C, message string) (work func())
}

// PersonalEnd is how a connection Connect made ended.
type PersonalEnd struct {
	Up      bool   // it was logged in until it dropped
	Refused string // the server refused the login, for this reason: tried again only rarely
	Failed  string // it cannot log in for this reason, which the state shows
	Err     error  // what else went wrong
}

// Person is one person's account and connection.
type Person[C comparable, X any] struct {
	Acct PersonalAccount
	X    X // the adapter's

	ctx    context.Context // nil until started; ends when the person is dropped or the adapter stops
	cancel context.CancelFunc
	retry  *backoff.Backoff

	// guarded by the adapter's lock
	cur   C             // the connection being made or up
	conn  C             // up; nil while not
	up    chan struct{} // closed while conn is up; a new one once it drops
	state string        // PersonalConnecting, PersonalConnected or PersonalFailed(why)
	// waited says a message already waited in vain since the connection
	// was last up: the next ones go to the puppet at once rather than
	// each waiting in turn.
	waited bool
	// parting are the rooms of links the person left, for the next sync
	// to leave.
	parting []string
	syncMu  sync.Mutex // one sync at a time
	// awaySent is the away message the connection up was last given, ""
	// for none (a new connection is not away); awayMu: one at a time.
	awaySent string
	awayMu   sync.Mutex
}

// Away is the away message p's connection up was last given, "" while
// it is not away (the adapter's lock held): a room it joins now joins
// away.
func (p *Person[C, X]) Away() string {
	if p == nil {
		return ""
	}
	return p.awaySent
}

// Ctx ends when the person is dropped or the adapter stops.
func (p *Person[C, X]) Ctx() context.Context { return p.ctx }

// Conn is p's connection while it is up (the adapter's lock held).
func (p *Person[C, X]) Conn() C { return p.conn }

// Current is p's connection being made or up (the adapter's lock held).
func (p *Person[C, X]) Current() C { return p.cur }

// State is p's state (the adapter's lock held).
func (p *Person[C, X]) State() string { return p.state }

// SetState sets p's state while its connection is up, as the protocol
// sees it (the adapter's lock held).
func (p *Person[C, X]) SetState(state string) { p.state = state }

// NewPersonal keeps the personal connections of an adapter whose lock is
// mu and whose goroutines wg counts.
func NewPersonal[C comparable, X any](mu *sync.Mutex, wg *sync.WaitGroup, h PersonalHooks[C, X]) *Personal[C, X] {
	return &Personal[C, X]{mu: mu, wg: wg, h: h, people: map[string]*Person[C, X]{}, wants: RoomWants{}, away: map[string]string{}}
}

// NewPerson is a person to connect as acct, for UseLocked.
func (s *Personal[C, X]) NewPerson(acct PersonalAccount, x X) *Person[C, X] {
	return &Person[C, X]{Acct: acct, X: x, up: make(chan struct{}), state: PersonalConnecting}
}

// UseLocked replaces the people: want are those to connect, invalid the
// states of those whose accounts cannot be used, by person. A person
// whose account changed is connected anew; one no longer listed is
// disconnected.
func (s *Personal[C, X]) UseLocked(want map[string]*Person[C, X], invalid map[string]string) {
	for person, p := range s.people {
		if q, ok := want[person]; ok && q.Acct == p.Acct {
			delete(want, person) // unchanged; StartLocked starts it if not yet
			continue
		}
		if p.cancel != nil {
			p.cancel()
		}
		if s.h.DroppedLocked != nil {
			s.h.DroppedLocked(p)
		}
		delete(s.people, person)
		_, listed := want[person]
		if _, bad := invalid[person]; !listed && !bad {
			delete(s.wants, person) // no longer a person here
		}
	}
	for person, why := range invalid {
		s.people[person] = &Person[C, X]{state: why}
	}
	for person, p := range want {
		s.people[person] = p
		if s.started && !s.stopped {
			s.startLocked(p)
		}
	}
}

// StartLocked starts every person's connection, and those of people
// listed later, under ctx.
func (s *Personal[C, X]) StartLocked(ctx context.Context) {
	s.ctx, s.started = ctx, true
	for _, p := range s.people {
		s.startLocked(p)
	}
}

// StopLocked marks the adapter stopping: no connection comes up or
// starts any more (they end with the adapter's context).
func (s *Personal[C, X]) StopLocked() { s.stopped = true }

func (s *Personal[C, X]) startLocked(p *Person[C, X]) {
	if p.Acct.ID == "" || p.ctx != nil {
		return
	}
	p.ctx, p.cancel = context.WithCancel(s.ctx)
	p.retry = s.h.Retry()
	s.wg.Add(1)
	go s.run(p)
}

// run keeps a person's connection up until the adapter stops or the
// person is dropped.
func (s *Personal[C, X]) run(p *Person[C, X]) {
	defer s.wg.Done()
	bo := p.retry
	// Wrong credentials stay wrong until someone changes them, and a
	// server that sees a login fail every few seconds may lock the
	// account.
	authBo := &backoff.Backoff{Min: PersonalLoginRetryMin, Max: PersonalLoginRetryMax, Clock: s.h.Clock}
	for p.ctx.Err() == nil {
		end := s.h.Connect(p.ctx, p)
		if p.ctx.Err() != nil {
			return
		}
		wait := bo
		switch {
		case end.Up:
			authBo.Reset()
		case end.Refused != "":
			s.failed(p, "SASL login as "+p.Acct.ID+" refused: "+end.Refused)
			wait = authBo
		case end.Failed != "":
			s.failed(p, end.Failed)
		}
		d := wait.Next()
		switch {
		case end.Up:
			s.h.Log().Warn(s.h.Noun+" ended; reconnecting", "person", p.Acct.Person, "err", end.Err, "retry_in", d)
		case end.Refused == "" && end.Failed == "":
			s.h.Log().Warn(s.h.Noun+" cannot connect", "person", p.Acct.Person, "account", p.Acct.ID, "err", end.Err, "retry_in", d)
		}
		if !wait.Sleep(p.ctx, d, nil) {
			return
		}
	}
}

// failed marks p failed with the reason, logged once until it changes:
// the person's messages go out through their puppet meanwhile.
func (s *Personal[C, X]) failed(p *Person[C, X], why string) {
	s.mu.Lock()
	changed := p.state != PersonalFailed(why)
	p.state = PersonalFailed(why)
	s.mu.Unlock()
	if changed {
		s.h.Log().Error(s.h.Noun+" cannot log in; their messages go out through their puppet", "person", p.Acct.Person, "account", p.Acct.ID, "why", why)
	}
}

// Attempt notes c as the connection of p's being made, which
// CurrentsLocked lists.
func (s *Personal[C, X]) Attempt(p *Person[C, X], c C) {
	s.mu.Lock()
	p.cur = c
	s.mu.Unlock()
}

// UpLocked marks p's connection c up and logged in, and takes it into
// the rooms it is to be in; false (and nothing done) when p or the
// adapter is stopping.
func (s *Personal[C, X]) UpLocked(p *Person[C, X], c C) bool {
	if p.ctx.Err() != nil || s.stopped {
		return false
	}
	p.conn, p.state, p.waited = c, PersonalConnected, false
	select {
	case <-p.up: // cannot happen: the last connection's DownLocked made a new one
	default:
		close(p.up)
	}
	p.retry.Connected()
	p.awaySent = ""
	s.SyncLocked(p)
	s.awayLocked(p)
	return true
}

// DownLocked marks p's connection c down, when it is the one up.
func (s *Personal[C, X]) DownLocked(p *Person[C, X], c C) {
	if p.conn != c {
		return
	}
	var none C
	p.conn, p.up = none, make(chan struct{})
	// Up, it was connected (or as good as: the protocol's own states).
	p.state = PersonalConnecting
}

// PersonalStatus implements PersonalStatuser.
func (s *Personal[C, X]) PersonalStatus() map[string]string {
	if s == nil {
		return map[string]string{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.people))
	for person, p := range s.people {
		out[person] = p.state
	}
	return out
}

// For returns the person's connection when they have one that is up,
// waiting up to wait for one still connecting; nil means their puppet
// speaks for them.
func (s *Personal[C, X]) For(ctx context.Context, person string, wait time.Duration) C {
	var none C
	if s == nil || person == "" {
		return none
	}
	s.mu.Lock()
	p := s.people[person]
	if p == nil || p.ctx == nil || p.waited || IsPersonalFailed(p.state) {
		s.mu.Unlock()
		return none
	}
	c, up := p.conn, p.up
	s.mu.Unlock()
	if c != none {
		return c
	}
	clock := s.h.Clock
	if clock == nil {
		clock = backoff.RealClock{}
	}
	t, stop := clock.After(wait)
	defer stop()
	select {
	case <-up:
	case <-t:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.conn == none && ctx.Err() == nil {
		p.waited = true
	}
	return p.conn
}

// Up returns the person's connection when it is up now, without waiting
// for one (the zero C when it is not): for what is worth sending only at
// once, as typing.
func (s *Personal[C, X]) Up(person string) C {
	var none C
	if s == nil || person == "" {
		return none
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.people[person]; p != nil && p.ctx != nil {
		return p.conn
	}
	return none
}

// Speaks reports whether person has a connection of their own here that
// is not failed: their messages will come from it.
func (s *Personal[C, X]) Speaks(person string) bool {
	if s == nil || person == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.people[person]
	return p != nil && p.ctx != nil && !IsPersonalFailed(p.state)
}

// PersonalRooms implements PersonalRoomer: person's connection joins the
// bridged rooms among rooms it is not in yet, and leaves those no longer
// among them, at once while it is up (UpLocked joins them when it comes
// up).
func (s *Personal[C, X]) PersonalRooms(person string, rooms []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added, removed := s.wants.Set(person, rooms)
	p := s.people[person]
	var none C
	if p == nil || p.conn == none || len(added)+len(removed) == 0 {
		return // a connection not up is in no room
	}
	p.parting = append(p.parting, removed...)
	s.SyncLocked(p)
}

// BridgedLocked takes the connections that are up, of the people whose
// links take in room, a newly bridged room, into it.
func (s *Personal[C, X]) BridgedLocked(room string) {
	if s == nil {
		return
	}
	for person, p := range s.people {
		if s.wants.Wants(person, room) {
			s.SyncLocked(p)
		}
	}
}

// SyncLocked has p's connection, when up, leave the rooms of links the
// person left and join the bridged rooms of those they take part in, in
// the background: joining waits for the server's replies, which the read
// loop we may be in reads. One sync of p's runs at a time, each on the
// latest wants, so that quick changes end where the last one says.
func (s *Personal[C, X]) SyncLocked(p *Person[C, X]) {
	var none C
	if p.conn == none || s.stopped {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.syncMu.Lock()
		defer p.syncMu.Unlock()
		person := p.Acct.Person
		s.mu.Lock()
		c := p.conn
		part := slices.DeleteFunc(p.parting, func(r string) bool { return s.wants.Wants(person, r) })
		p.parting = nil
		var work func()
		if c != none { // down: in no room, and UpLocked syncs again
			work = s.h.SyncLocked(p, c, part, s.wants.Of(person))
		}
		s.mu.Unlock()
		if work != nil {
			work()
		}
	}()
}

// PersonalAway implements PersonalAwayer.
func (s *Personal[C, X]) PersonalAway(person string, away bool, message string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if away {
		if message == "" {
			message = "Away" // "" would say back
		}
		s.away[person] = message
	} else {
		delete(s.away, person)
	}
	if p := s.people[person]; p != nil {
		s.awayLocked(p)
	}
}

// awayLocked gives p's connection, when up, the person's away state, in
// the background and only when it changed; one at a time, each with the
// latest state, so that quick changes end where the last one says.
func (s *Personal[C, X]) awayLocked(p *Person[C, X]) {
	var none C
	if p.conn == none || s.stopped || s.h.AwayLocked == nil || p.awaySent == s.away[p.Acct.Person] {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.awayMu.Lock()
		defer p.awayMu.Unlock()
		s.mu.Lock()
		c, message := p.conn, s.away[p.Acct.Person]
		if c == none || p.awaySent == message {
			s.mu.Unlock()
			return
		}
		p.awaySent = message
		work := s.h.AwayLocked(p, c, message)
		s.mu.Unlock()
		if work != nil {
			work()
		}
	}()
}

// AllLocked are the people, by person.
func (s *Personal[C, X]) AllLocked() iter.Seq2[string, *Person[C, X]] {
	if s == nil {
		return maps.All(map[string]*Person[C, X](nil))
	}
	return maps.All(s.people)
}

// UpConnsLocked are the connections that are up.
func (s *Personal[C, X]) UpConnsLocked() []C {
	return s.connsLocked(func(p *Person[C, X]) C { return p.conn })
}

// CurrentsLocked are the connections being made or up.
func (s *Personal[C, X]) CurrentsLocked() []C {
	return s.connsLocked(func(p *Person[C, X]) C { return p.cur })
}

func (s *Personal[C, X]) connsLocked(of func(*Person[C, X]) C) []C {
	if s == nil {
		return nil
	}
	var out []C
	var none C
	for _, p := range s.people {
		if c := of(p); c != none {
			out = append(out, c)
		}
	}
	return out
}
