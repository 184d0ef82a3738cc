package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseNameRE is the characters of a JetStream KV key.
var leaseNameRE = regexp.MustCompile(`^[-/_=.A-Za-z0-9]+$`)

// ErrLost is returned by Renew when the lease is no longer this
// instance's: it ran out, or another instance holds it.
var ErrLost = errors.New("cluster: lease lost")

// Lease is one named lease ("network/libera", "network/libera/shard/1")
// as this instance sees it. Its methods are safe for concurrent use.
type Lease struct {
	n    *Node
	name string

	mu      sync.Mutex
	rev     uint64    // revision of our last write; 0: not held
	token   uint64    // revision of the acquiring write
	renewed time.Time // start of our last successful write (monotonic)
}

// Lease returns this instance's lease name (not acquired when new). A
// name is KV key characters: letters, digits, - _ = / and inner dots. The
// same name gives the same Lease: two of them would both adopt the key
// (see TryAcquire) and both believe they hold it.
func (n *Node) Lease(name string) (*Lease, error) {
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") || !leaseNameRE.MatchString(name) {
		return nil, fmt.Errorf("cluster: invalid lease name %q", name)
	}
	if n.observer {
		return nil, errObserver
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.made[name]; l != nil {
		return l, nil
	}
	l := &Lease{n: n, name: name}
	if n.made == nil {
		n.made = map[string]*Lease{}
	}
	n.made[name] = l
	return l, nil
}

// Name is the lease's name.
func (l *Lease) Name() string { return l.name }

// MaySend reports whether this instance may act as the lease's holder now:
// it holds it and less than TTL - margin has passed since its last
// successful write began. Check it just before every send.
func (l *Lease) MaySend() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev != 0 && time.Since(l.renewed) < l.n.ttl-l.n.margin
}

// Token is the fencing token of the current holding (the revision of the
// acquiring write, larger for every later holder) and whether the lease
// is held at all. Held does not mean MaySend.
func (l *Lease) Token() (token uint64, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token, l.rev != 0
}

// Age is how long ago the last successful write began; 0 if not held.
func (l *Lease) Age() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return 0
	}
	return time.Since(l.renewed)
}

// TryAcquire makes one attempt to take the lease; false (and no error)
// when another instance holds it. Taking it again while held renews it.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	if _, held := l.Token(); held {
		err := l.Renew(ctx)
		return err == nil, ignoreLost(err)
	}
	ctx, cancel := l.n.op(ctx)
	defer cancel()
	start := time.Now()
	rev, err := l.n.leases.Create(ctx, l.name, []byte(l.n.instance))
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Ours all the same when the key holds our own name: a renewal
		// whose answer timed out (NATS frozen or slow) was applied after
		// all, or this instance restarted within the TTL. Instance names
		// are unique, so it is adopted by an update on that revision,
		// which fails if anyone wrote since; otherwise this instance
		// would be locked out of its own lease for a TTL.
		start = time.Now()
		if rev, err = l.adopt(ctx); rev == 0 {
			return false, err
		}
	} else if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.rev, l.token, l.renewed = rev, rev, start
	l.mu.Unlock()
	l.n.log.Info("lease acquired", "lease", l.name, "token", rev)
	return true, nil
}

// adopt takes over the key if it holds this instance's name; 0 if not.
func (l *Lease) adopt(ctx context.Context) (uint64, error) {
	e, err := l.n.leases.Get(ctx, l.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return 0, nil // gone meanwhile: the next attempt creates it
	}
	if err != nil {
		return 0, err
	}
	if holder, _ := parseLeaseValue(e.Value()); holder != l.n.instance {
		return 0, nil
	}
	rev, err := l.n.leases.Update(ctx, l.name, []byte(l.n.instance), e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, nil
	}
	return rev, err
}

// Renew extends the lease. It returns ErrLost if the key is no longer
// this instance's last write (it ran out, or another took it), after which
// only TryAcquire gets it back; other errors (NATS unreachable) leave the
// lease held but running out, and MaySend turns false on time.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	rev, token := l.rev, l.token
	l.mu.Unlock()
	if rev == 0 {
		return ErrLost
	}
	ctx, cancel := l.n.op(ctx)
	defer cancel()
	start := time.Now()
	next, err := l.n.leases.Update(ctx, l.name, leaseValue(l.n.instance, token), rev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev != rev {
		return ErrLost // released meanwhile
	}
	switch {
	case err == nil:
		l.rev, l.renewed = next, start
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		l.rev = 0
		l.n.log.Warn("lease lost", "lease", l.name, "token", l.token)
		return ErrLost
	default:
		return err
	}
}

// Release gives the lease up at once, for a clean handover (SIGTERM):
// MaySend is false before the key goes, and the delete only applies to
// this instance's own last write, never to a later holder's.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.rev = 0
	l.mu.Unlock()
	if rev == 0 {
		return nil
	}
	ctx, cancel := l.n.op(ctx)
	defer cancel()
	err := l.n.leases.Delete(ctx, l.name, jetstream.LastRevision(rev))
	if err != nil && !isMismatch(err) {
		return err
	}
	l.n.log.Info("lease released", "lease", l.name)
	return nil
}

// Holder is the instance holding the lease according to NATS and its
// current revision; "" when nobody does.
func (l *Lease) Holder(ctx context.Context) (string, uint64, error) {
	ctx, cancel := l.n.op(ctx)
	defer cancel()
	e, err := l.n.leases.Get(ctx, l.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	holder, _ := parseLeaseValue(e.Value())
	return holder, e.Revision(), nil
}

// leaseValue is what a holder writes to its lease key: its instance name,
// then on renewals the fencing token, since the bucket keeps only a key's
// last revision and others (Snapshot) could not find the acquiring one.
// The acquiring write holds the name alone: its own revision is the token.
func leaseValue(instance string, token uint64) []byte {
	return []byte(instance + " " + strconv.FormatUint(token, 10))
}

// parseLeaseValue reads a lease key's value: the holder, and the fencing
// token if the value carries one (0: the write is the acquiring one).
func parseLeaseValue(v []byte) (holder string, token uint64) {
	holder, t, ok := strings.Cut(string(v), " ")
	if ok {
		token, _ = strconv.ParseUint(t, 10, 64)
	}
	return holder, token
}

// Hold keeps trying to take the lease and, once held, renews it every
// quarter TTL (faster after a failed renewal), until ctx ends; it does
// not release (call Release for a handover). A contender retries as soon
// as the key is deleted or expires (it watches the key) and at least every
// quarter TTL. onChange, if not nil, is called with true when the lease
// is acquired and false when it is lost.
func (l *Lease) Hold(ctx context.Context, onChange func(held bool)) {
	if onChange == nil {
		onChange = func(bool) {}
	}
	freed := make(chan struct{}, 1)
	watching := make(chan struct{})
	go func() { l.watch(ctx, freed); close(watching) }()
	defer func() { <-watching }()
	period := l.n.ttl / 4
	for ctx.Err() == nil {
		wait := period
		if _, held := l.Token(); held {
			switch err := l.Renew(ctx); {
			case errors.Is(err, ErrLost):
				onChange(false)
				continue // try to take it again at once
			case err != nil && ctx.Err() == nil:
				l.n.log.Warn("lease renewal", "lease", l.name, "err", err)
				wait = period / 4
			}
		} else {
			ok, err := l.TryAcquire(ctx)
			switch {
			case ok:
				onChange(true)
			case err != nil && ctx.Err() == nil:
				l.n.log.Warn("lease acquire", "lease", l.name, "err", err)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-freed:
		}
		t.Stop()
	}
}

// watch signals freed when the lease's key is deleted, purged or expires.
// A lost watcher (NATS down) is restarted; Hold's polling covers the gap.
func (l *Lease) watch(ctx context.Context, freed chan<- struct{}) {
	for ctx.Err() == nil {
		w, err := l.n.leases.Watch(ctx, l.name, jetstream.UpdatesOnly())
		if err == nil {
			// The watcher does not end with ctx; stopping it closes
			// Updates.
			stop := context.AfterFunc(ctx, func() { w.Stop() })
			for e := range w.Updates() {
				if e != nil && e.Operation() != jetstream.KeyValuePut {
					select {
					case freed <- struct{}{}:
					default:
					}
				}
			}
			stop()
			w.Stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(l.n.ttl / 4):
		}
	}
}

func ignoreLost(err error) error {
	if errors.Is(err, ErrLost) {
		return nil
	}
	return err
}

func isMismatch(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
