package service

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// awayTracker marks people away on the networks where Switchboard holds
// their own connections, as a bouncer does when no client of theirs is
// attached: here their client is the one on their home network, and it
// counts as attached while they do something there that Switchboard
// sees (the router calls active). Once they have done nothing for their
// away_after, every adapters.PersonalAwayer marks them away with their
// away_message; what they do next brings them back. At start, and for a
// person newly added, the idle time counts from then: their connections
// come up not away, as a bouncer's do while its client is there, and are
// marked away only if nothing is heard of them in time.
type awayTracker struct {
	clock backoff.Clock
	wake  chan struct{}

	mu      sync.Mutex
	awayers map[string]adapters.PersonalAwayer // by network
	rules   map[string]awayRule                // by person
	last    map[string]time.Time               // when each did something last (or was added)
	away    map[string]bool                    // those marked away
}

// awayRule is a person's away_after and away_message.
type awayRule struct {
	after   time.Duration
	message string
}

func newAwayTracker(clock backoff.Clock) *awayTracker {
	if clock == nil {
		clock = backoff.RealClock{}
	}
	return &awayTracker{clock: clock, wake: make(chan struct{}, 1),
		rules: map[string]awayRule{}, last: map[string]time.Time{}, away: map[string]bool{}}
}

// addAwayer has a's personal connections follow who is away, from now.
func (t *awayTracker) addAwayer(network string, a adapters.PersonalAwayer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.awayers == nil {
		t.awayers = map[string]adapters.PersonalAwayer{}
	}
	t.awayers[network] = a
	for person := range t.away {
		a.PersonalAway(person, true, t.rules[person].message)
	}
}

// use puts people's rules in place (start, reloads, API changes): a new
// person's idle time starts now; one gone is forgotten; one away whose
// message changed gets the new one.
func (t *awayTracker) use(people map[string]*config.Person) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	rules := make(map[string]awayRule, len(people))
	for id, p := range people {
		if p == nil {
			continue
		}
		r := awayRule{after: p.AwayAfter, message: p.AwayMessage}
		rules[id] = r
		if _, known := t.rules[id]; !known {
			t.last[id] = now
		} else if t.away[id] && t.rules[id].message != r.message {
			t.setLocked(id, true, r.message)
		}
	}
	for id := range t.rules {
		if _, ok := rules[id]; !ok {
			delete(t.last, id)
			delete(t.away, id)
		}
	}
	t.rules = rules
	t.poke()
}

// active notes that person did something on their home network: they
// are back if they were away, and their idle time starts again. It never
// blocks (the router calls it for every such event).
func (t *awayTracker) active(person string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.rules[person]; !ok {
		return
	}
	t.last[person] = t.clock.Now()
	if t.away[person] {
		delete(t.away, person)
		t.setLocked(person, false, "")
		t.poke() // their next deadline may be the earliest
	}
}

// due marks away everyone idle for their away_after by now, and returns
// when the next one will be (zero: no one is left to mark).
func (t *awayTracker) due() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	var next time.Time
	for person, r := range t.rules {
		if t.away[person] {
			continue
		}
		at := t.last[person].Add(r.after)
		if !at.After(now) {
			t.away[person] = true
			t.setLocked(person, true, r.message)
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// setLocked tells every awayer; they do not block, and calling them
// with t.mu held keeps the order of away and back.
func (t *awayTracker) setLocked(person string, away bool, message string) {
	for _, a := range t.awayers {
		a.PersonalAway(person, away, message)
	}
}

func (t *awayTracker) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// run marks people away as their time comes, until ctx ends.
func (t *awayTracker) run(ctx context.Context) {
	for {
		var timer <-chan time.Time
		stop := func() {}
		if next := t.due(); !next.IsZero() {
			timer, stop = t.clock.After(next.Sub(t.clock.Now()))
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-t.wake:
		case <-timer:
		}
		stop()
	}
}
