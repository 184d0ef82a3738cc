package every

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		Run(ctx, 5*time.Millisecond, func() {
			if n.Add(1) == 3 {
				cancel()
			}
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := n.Load(); got != 3 {
		t.Errorf("fn called %d times, want 3 (none after the cancel)", got)
	}
}
