package adapters

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestAcceptQueueLimit(t *testing.T) {
	q := NewAcceptQueue(slog.New(slog.DiscardHandler))
	q.max = 2
	ev := func() bridge.Event { return &bridge.Join{} }
	if !q.Push(ev()) || !q.Push(ev()) || q.Push(ev()) {
		t.Fatal("queue limit not applied")
	}
	if _, ok := q.pop(); !ok || q.Len() != 1 {
		t.Fatal("pop")
	}
}

// flaky fails its first Accept calls, then records.
type flaky struct {
	mu    sync.Mutex
	fails int
	got   []bridge.Event
}

func (f *flaky) Accept(_ context.Context, ev bridge.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("store down")
	}
	f.got = append(f.got, ev)
	return nil
}
func (f *flaky) Online(string) {}

func TestAcceptQueueRetriesInOrder(t *testing.T) {
	q := NewAcceptQueue(slog.New(slog.DiscardHandler))
	in := &flaky{fails: 2}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, in)
	for i := range 3 {
		q.Push(&bridge.Message{Text: string(rune('a' + i))})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		in.mu.Lock()
		n := len(in.got)
		in.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 accepted", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, ev := range in.got {
		if got := ev.(*bridge.Message).Text; got != string(rune('a'+i)) {
			t.Errorf("event %d is %q", i, got)
		}
	}
}

// committer commits at once; the disk never syncs, and Accept, which
// would wait for it, is never to be called.
type committer struct {
	flaky
	accepted int
}

func (c *committer) Commit(ctx context.Context, ev bridge.Event) (func(bool) error, error) {
	if err := c.flaky.Accept(ctx, ev); err != nil {
		return nil, err
	}
	return func(bool) error { select {} }, nil
}

func (c *committer) Accept(context.Context, bridge.Event) error {
	c.mu.Lock()
	c.accepted++
	c.mu.Unlock()
	select {}
}

// IRC and XMPP acknowledge nothing: their events are handed on once
// committed, without waiting for the disk.
func TestAcceptQueueDoesNotWaitForTheDisk(t *testing.T) {
	q := NewAcceptQueue(slog.New(slog.DiscardHandler))
	in := &committer{flaky: flaky{fails: 1}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, in)
	for i := range 3 {
		q.Push(&bridge.Message{Text: string(rune('a' + i))})
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		in.mu.Lock()
		n, waited := len(in.got), in.accepted
		in.mu.Unlock()
		if waited > 0 {
			t.Fatal("Accept called: the queue waits for the disk")
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 committed", n)
		}
	}
	for i, ev := range in.got {
		if got := ev.(*bridge.Message).Text; got != string(rune('a'+i)) {
			t.Errorf("event %d is %q", i, got)
		}
	}
}
