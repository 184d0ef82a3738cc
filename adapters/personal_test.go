package adapters

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// fakeClock hands out timers that fire only when the test says, and
// records how long each was for.
type fakeClock struct {
	mu     sync.Mutex
	asked  chan time.Duration
	timers []chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{asked: make(chan time.Duration, 16)} }

func (c *fakeClock) Now() time.Time { return time.Unix(0, 0) }

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.timers = append(c.timers, ch)
	c.mu.Unlock()
	c.asked <- d
	return ch, func() {}
}

// fire fires the timers handed out since the last fire.
func (c *fakeClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		t <- time.Time{}
	}
	c.timers = nil
}

func (c *fakeClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no wait started")
		return 0
	}
}

type fakeConn struct{ name string }

// fakeNet plays the protocol: each Connect takes the next outcome the
// test sends.
type fakeNet struct {
	mu    sync.Mutex
	wg    sync.WaitGroup
	s     *Personal[*fakeConn, struct{}]
	ends  chan func(p *Person[*fakeConn, struct{}]) PersonalEnd
	syncs chan []string
	aways chan string // "<conn> <message>" of each away given
}

func newFakeNet(clock backoff.Clock) *fakeNet {
	n := &fakeNet{ends: make(chan func(*Person[*fakeConn, struct{}]) PersonalEnd), syncs: make(chan []string, 16), aways: make(chan string, 16)}
	n.s = NewPersonal(&n.mu, &n.wg, PersonalHooks[*fakeConn, struct{}]{
		Noun: "personal connection", Log: func() *slog.Logger { return slog.New(slog.DiscardHandler) }, Clock: clock,
		Retry: func() *backoff.Backoff { return &backoff.Backoff{Min: time.Second, Max: time.Second, Clock: clock} },
		Connect: func(ctx context.Context, p *Person[*fakeConn, struct{}]) PersonalEnd {
			select {
			case f := <-n.ends:
				return f(p)
			case <-ctx.Done():
				return PersonalEnd{Err: ctx.Err()}
			}
		},
		SyncLocked: func(p *Person[*fakeConn, struct{}], c *fakeConn, part, join []string) func() {
			return func() { n.syncs <- append(append([]string{}, part...), join...) }
		},
		AwayLocked: func(p *Person[*fakeConn, struct{}], c *fakeConn, message string) func() {
			return func() { n.aways <- c.name + " " + message }
		},
	})
	return n
}

func (n *fakeNet) status(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if got := n.s.PersonalStatus()["alice"]; got == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("state %q, want %q", got, want)
		}
	}
}

func TestPersonalSupervisor(t *testing.T) {
	clock := newFakeClock()
	n := newFakeNet(clock)
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); n.wg.Wait() }()
	alice := PersonalAccount{Person: "alice", ID: "alice", Password: "pw"}
	n.mu.Lock()
	n.s.UseLocked(map[string]*Person[*fakeConn, struct{}]{"alice": n.s.NewPerson(alice, struct{}{})},
		map[string]string{"bob": "failed: not a nick"})
	n.s.StartLocked(ctx)
	n.mu.Unlock()
	if st := n.s.PersonalStatus(); st["alice"] != PersonalConnecting || st["bob"] != "failed: not a nick" {
		t.Fatalf("status %v", st)
	}

	// Her connection waits for its login: a message waits for it.
	k := &fakeConn{"k1"}
	release := make(chan struct{})
	n.ends <- func(p *Person[*fakeConn, struct{}]) PersonalEnd {
		<-release
		n.mu.Lock()
		n.s.UpLocked(p, k)
		n.mu.Unlock()
		<-release
		n.mu.Lock()
		n.s.DownLocked(p, k)
		n.mu.Unlock()
		return PersonalEnd{Up: true}
	}
	got := make(chan *fakeConn)
	go func() { got <- n.s.For(t.Context(), "alice", 10*time.Second) }()
	if d := clock.next(t); d != 10*time.Second {
		t.Errorf("a message waits %v for her connection, want 10s", d)
	}
	release <- struct{}{}
	if c := <-got; c != k {
		t.Errorf("for: %v, want her connection once up", c)
	}
	n.status(t, PersonalConnected)
	if s := <-n.syncs; len(s) != 0 {
		t.Errorf("sync on coming up %v, want none to join yet", s)
	}
	if c := n.s.For(t.Context(), "alice", time.Hour); c != k {
		t.Errorf("for, up: %v", c)
	}

	// Up, it joins the rooms she is to be in; changes are synced.
	n.s.PersonalRooms("alice", []string{"#a", "#b"})
	if s := <-n.syncs; !slices.Equal(s, []string{"#a", "#b"}) {
		t.Errorf("sync %v, want #a #b joined", s)
	}
	n.s.PersonalRooms("alice", []string{"#b"})
	if s := <-n.syncs; !slices.Equal(s, []string{"#a", "#b"}) {
		t.Errorf("sync %v, want #a left and #b kept", s)
	}

	// Down: connecting again, after the usual backoff; a message waits
	// in vain once, and the next ones do not wait.
	release <- struct{}{}
	if d := clock.next(t); d != time.Second {
		t.Errorf("reconnect in %v, want the usual backoff", d)
	}
	n.status(t, PersonalConnecting)
	go func() { got <- n.s.For(t.Context(), "alice", 10*time.Second) }()
	clock.next(t)
	clock.fire()
	if c := <-got; c != nil {
		t.Errorf("for after the wait: %v", c)
	}
	if c := n.s.For(t.Context(), "alice", time.Hour); c != nil {
		t.Errorf("for after a vain wait: %v", c)
	}

	// A refused login: failed, and tried again only after the long wait.
	clock.fire()
	n.ends <- func(*Person[*fakeConn, struct{}]) PersonalEnd { return PersonalEnd{Refused: "bad password"} }
	if d := clock.next(t); d < PersonalLoginRetryMin/2 || d > PersonalLoginRetryMin {
		t.Errorf("retry after a refused login in %v, want about %v", d, PersonalLoginRetryMin)
	}
	n.status(t, PersonalFailed("SASL login as alice refused: bad password"))
	// Failed: her messages go to the puppet at once.
	if c := n.s.For(t.Context(), "alice", time.Hour); c != nil {
		t.Errorf("for a failed connection: %v", c)
	}

	// Dropped: no longer listed, no longer a state.
	n.mu.Lock()
	n.s.UseLocked(nil, nil)
	n.mu.Unlock()
	if st := n.s.PersonalStatus(); len(st) != 0 {
		t.Errorf("status after dropping everyone: %v", st)
	}
}

// Away is given to her connection when it comes up and when it changes,
// once each; a new connection, which starts back, is given it again.
func TestPersonalAway(t *testing.T) {
	clock := newFakeClock()
	n := newFakeNet(clock)
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); n.wg.Wait() }()
	n.mu.Lock()
	n.s.UseLocked(map[string]*Person[*fakeConn, struct{}]{"alice": n.s.NewPerson(PersonalAccount{Person: "alice", ID: "alice", Password: "pw"}, struct{}{})}, nil)
	n.s.StartLocked(ctx)
	n.mu.Unlock()
	given := func(want string) {
		t.Helper()
		select {
		case got := <-n.aways:
			if got != want {
				t.Fatalf("given %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("not given %q", want)
		}
	}
	none := func() {
		t.Helper()
		time.Sleep(50 * time.Millisecond)
		select {
		case got := <-n.aways:
			t.Fatalf("given %q, want nothing", got)
		default:
		}
	}
	n.s.PersonalAway("alice", true, "brb") // not up yet: kept
	n.s.PersonalAway("nobody", true, "x")
	none()
	release := make(chan struct{})
	up := func(k *fakeConn) {
		n.ends <- func(p *Person[*fakeConn, struct{}]) PersonalEnd {
			n.mu.Lock()
			n.s.UpLocked(p, k)
			n.mu.Unlock()
			<-release
			n.mu.Lock()
			n.s.DownLocked(p, k)
			n.mu.Unlock()
			return PersonalEnd{Up: true}
		}
	}
	up(&fakeConn{"k1"})
	given("k1 brb")
	n.s.PersonalAway("alice", true, "brb")
	none()
	n.s.PersonalAway("alice", false, "")
	given("k1 ")
	n.s.PersonalAway("alice", true, "lunch")
	given("k1 lunch")
	release <- struct{}{}
	n.status(t, PersonalConnecting)
	n.s.PersonalAway("alice", true, "")
	none()        // down: nothing to give; "" away is still away
	clock.next(t) // the backoff before connecting again
	clock.fire()
	up(&fakeConn{"k2"})
	given("k2 Away")
	release <- struct{}{}
}
