package service

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// awayLog is a PersonalAwayer that writes down what it is told.
type awayLog struct {
	mu    sync.Mutex
	calls []string
	told  chan string
}

func (l *awayLog) PersonalAway(person string, away bool, message string) {
	c := person + " back"
	if away {
		c = fmt.Sprintf("%s away %q", person, message)
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
	if l.told != nil {
		l.told <- c
	}
}

// take returns what was told since the last take.
func (l *awayLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

func awayPeople(people ...any) map[string]*config.Person {
	m := map[string]*config.Person{}
	for i := 0; i < len(people); i += 3 {
		m[people[i].(string)] = &config.Person{AwayAfter: people[i+1].(time.Duration), AwayMessage: people[i+2].(string)}
	}
	return m
}

// The idle timer: away after away_after without activity at home, counted
// from start; back at the next activity; the message follows a change.
func TestAwayTracker(t *testing.T) {
	clock := testenv.NewFakeClock()
	start := clock.Now()
	tr := newAwayTracker(clock)
	log := &awayLog{}
	tr.addAwayer("log", log)
	tr.use(awayPeople("alice", 2*time.Minute, "brb", "bob", 5*time.Minute, "zzz"))
	check := func(step string, want ...string) {
		t.Helper()
		got := log.take()
		slices.Sort(got) // people are due in no order
		if !slices.Equal(got, want) {
			t.Errorf("%s: told %q, want %q", step, got, want)
		}
	}
	if next := tr.due(); !next.Equal(start.Add(2 * time.Minute)) {
		t.Errorf("first deadline %v after start, want 2m", next.Sub(start))
	}
	check("at start, no one is away")

	clock.Advance(time.Minute)
	tr.active("alice") // her idle time starts again: away at 3m
	tr.active("nobody")
	clock.Advance(90 * time.Second)
	tr.due()
	check("2m30s, alice active at 1m")
	clock.Advance(30 * time.Second)
	if next := tr.due(); !next.Equal(start.Add(5 * time.Minute)) {
		t.Errorf("next deadline %v after start, want bob's 5m", next.Sub(start))
	}
	check("3m", `alice away "brb"`)
	tr.due()
	check("3m again: told once")

	tr.active("alice")
	tr.active("alice")
	check("alice active", "alice back")

	clock.Advance(2 * time.Minute)
	tr.due()
	check("5m", `alice away "brb"`, `bob away "zzz"`)

	late := &awayLog{}
	tr.addAwayer("late", late) // a network added later learns who is away
	if got := late.take(); len(got) != 2 {
		t.Errorf("a late awayer was told %q, want alice's and bob's away", got)
	}
	tr.use(awayPeople("alice", 2*time.Minute, "gone home", "carol", time.Minute, "x"))
	check("reload: alice's message changes, bob is gone, carol is new", `alice away "gone home"`)
	late.take()
	clock.Advance(59 * time.Second)
	tr.due()
	check("carol counts from her arrival")
	clock.Advance(time.Second)
	tr.due()
	check("carol after her minute", `carol away "x"`)
	tr.active("bob")
	check("bob, gone, is nobody")
}

// run marks people away as the clock reaches their time, and wakes for a
// change.
func TestAwayTrackerRun(t *testing.T) {
	clock := testenv.NewFakeClock()
	tr := newAwayTracker(clock)
	log := &awayLog{told: make(chan string, 10)}
	tr.addAwayer("log", log)
	tr.use(awayPeople("alice", 2*time.Second, "brb"))
	// use's wake is for a run already going: left, it would have run
	// arm a second timer while the clock is advanced for the first.
	select {
	case <-tr.wake:
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait := func(want string) {
		t.Helper()
		select {
		case got := <-log.told:
			if got != want {
				t.Fatalf("told %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("not told %q", want)
		}
	}
	if d := <-clock.Armed; d != 2*time.Second {
		t.Fatalf("armed for %v, want 2s", d)
	}
	clock.Advance(2 * time.Second)
	wait(`alice away "brb"`)
	tr.active("alice")
	wait("alice back")
	if d := <-clock.Armed; d != 2*time.Second { // woken, then armed anew
		t.Fatalf("armed for %v after her return, want 2s", d)
	}
	clock.Advance(2 * time.Second)
	wait(`alice away "brb"`)
}
