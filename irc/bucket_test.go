package irc

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

type testMessage struct{ bridge.Message }

func attachment(url, name string) bridge.Attachment { return bridge.Attachment{URL: url, Name: name} }

func TestBucketReserve(t *testing.T) {
	c := testenv.NewFakeClock()
	b := newBucket(5, time.Second, c)
	now := c.Now()
	for i := 0; i < 5; i++ {
		if d, _ := b.reserve(now); d != 0 {
			t.Fatalf("burst line %d waits %v", i, d)
		}
	}
	for i := 1; i <= 3; i++ {
		if d, _ := b.reserve(now); d != time.Duration(i)*time.Second {
			t.Fatalf("line %d after the burst waits %v, want %ds", 5+i, d, i)
		}
	}
	// Three lines are scheduled ahead; after 10s of silence the bucket is
	// full again, and no fuller than that.
	later := now.Add(13 * time.Second)
	for i := 0; i < 5; i++ {
		if d, _ := b.reserve(later); d != 0 {
			t.Fatalf("refilled burst line %d waits %v", i, d)
		}
	}
	if d, _ := b.reserve(later); d != time.Second {
		t.Fatalf("line after refilled burst waits %v", d)
	}
	// Half an interval later, the next token is half an interval away.
	if d, _ := b.reserve(later.Add(1500 * time.Millisecond)); d != 500*time.Millisecond {
		t.Fatalf("partial refill: waits %v", d)
	}
}

func TestBucketUnreserve(t *testing.T) {
	c := testenv.NewFakeClock()
	b := newBucket(1, time.Second, c)
	now := c.Now()
	b.reserve(now)
	d, r := b.reserve(now)
	if d != time.Second {
		t.Fatalf("second line waits %v", d)
	}
	r.CancelAt(now) // that sender gave up
	if d, _ := b.reserve(now); d != time.Second {
		t.Fatalf("after unreserve the next line waits %v, want 1s", d)
	}
}

func TestBucketWait(t *testing.T) {
	c := testenv.NewFakeClock()
	b := newBucket(2, time.Second, c)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := b.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- b.wait(ctx) }()
	<-c.Armed // the goroutine is waiting for its token
	select {
	case <-done:
		t.Fatal("third line did not wait")
	default:
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("third line sent before its interval")
	default:
	}
	c.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBucketWaitCanceled(t *testing.T) {
	c := testenv.NewFakeClock()
	b := newBucket(1, time.Second, c)
	b.wait(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.wait(ctx) }()
	<-c.Armed
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The canceled line handed its token back.
	if d, _ := b.reserve(c.Now()); d != time.Second {
		t.Fatalf("next line waits %v, want 1s", d)
	}
}
