package testenv

import (
	"errors"
	"sync"
	"time"
)

// received keeps what a test client received, in order, and lets a test
// wait for what it expects. The zero value is ready to use.
type received[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{} // closed and replaced on every new item
}

var (
	errWaitTimeout = errors.New("timed out")
	errWaitGone    = errors.New("connection gone")
)

func (r *received[T]) add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
	r.mu.Unlock()
}

// count is how many items arrived so far.
func (r *received[T]) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

// all returns a copy of every item so far.
func (r *received[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// waitIndex returns the first item at index from or later that matches,
// waiting up to timeout, or until gone (may be nil) is closed.
func (r *received[T]) waitIndex(from int, timeout time.Duration, gone <-chan struct{}, match func(T) bool) (int, T, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		items := r.items
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		notify := r.notify
		r.mu.Unlock()
		for ; from < len(items); from++ {
			if match(items[from]) {
				return from, items[from], nil
			}
		}
		var zero T
		select {
		case <-notify:
		case <-gone:
			return -1, zero, errWaitGone
		case <-deadline.C:
			return -1, zero, errWaitTimeout
		}
	}
}
