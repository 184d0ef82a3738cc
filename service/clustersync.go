package service

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// In cluster mode every instance serves the provisioning API and the
// chat commands, and every instance keeps in memory what they change:
// the link overlay (links.go), the people overlay (people.go) and the
// router's blocks (bridge/block.go). An instance that changes one stores
// it first, then publishes a notice naming the part over NATS
// (cluster.Node.PublishChange); every other instance reads that part
// again from the store and puts it in place as a change of its own
// would be: joining and leaving rooms on the networks it runs, handing
// its adapters people's accounts, keeping senders out. The notice
// carries no data, so the store stays the one truth. A notice lost
// while NATS is down is made up for when the connection is back and,
// whatever else was missed, by reading everything again every
// resyncEvery.

// The parts a change notice names.
const (
	changedLinks  = "links" // links and relay mode
	changedPeople = "people"
	changedBlocks = "blocks"
	// Where people are (bridge/presence.go): their personal connections
	// on the networks held here follow it.
	changedPresence = "presence"
)

var allParts = []string{changedLinks, changedPeople, changedBlocks, changedPresence}

// resyncEvery is how often an instance reads every part again without
// a notice. (A variable for tests.)
var resyncEvery = 30 * time.Second

// changed tells the other instances of a cluster that part was changed
// in the store here; on one instance it does nothing. It never blocks.
func (s *Service) changed(part string) {
	if s.cluster == nil {
		return
	}
	if err := s.cluster.node.PublishChange(part); err != nil {
		// The others read it at their next resync.
		s.cluster.log.Warn("tell the other instances of a change", "part", part, "err", err)
	}
}

// storedOverlay reads the overlay stored under key (links or people),
// with its stored text and whether one is stored.
func storedOverlay[T any](ctx context.Context, s *Service, key string) (o T, raw string, had bool, err error) {
	raw, had, err = s.state.Get(ctx, key)
	if err != nil || !had {
		return o, raw, had, err
	}
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return o, raw, had, fmt.Errorf("stored runtime %s: %w", key, err)
	}
	return o, raw, had, nil
}

// comparePutter is the store's state (store.State) for storeOverlay.
type comparePutter interface {
	CompareAndPut(ctx context.Context, key, old string, had bool, value string) (bool, error)
}

// overlayTries bounds how often storeOverlay starts a change again
// because another instance stored one first.
const overlayTries = 10

// storeOverlay makes one change of the overlay stored under key (links
// or people): change gets the overlay to start from and returns the one
// to store, which storeOverlay returns once stored. On one instance it
// starts from local, the one in place. In a cluster it starts from the
// stored one, which another instance may have changed a moment ago, and
// stores the result only if that is still the stored one; else change
// runs again on what is stored now, so that neither change undoes the
// other.
func storeOverlay[T any](ctx context.Context, s *Service, key string, local T, change func(cur T) (T, error)) (T, error) {
	for tries := 1; ; tries++ {
		cur, raw, had := local, "", false
		if s.cluster != nil {
			var err error
			if cur, raw, had, err = storedOverlay[T](ctx, s, key); err != nil {
				return cur, err
			}
		}
		next, err := change(cur)
		if err != nil {
			return next, err
		}
		b, err := json.Marshal(next)
		if err != nil {
			return next, err
		}
		stored := true
		if cp, ok := s.state.(comparePutter); ok && s.cluster != nil {
			stored, err = cp.CompareAndPut(ctx, key, raw, had, string(b))
		} else {
			err = s.state.Put(ctx, key, string(b))
		}
		switch {
		case err != nil:
			return next, fmt.Errorf("store runtime %s: %w", key, err)
		case stored:
			return next, nil
		case tries == overlayTries:
			return next, fmt.Errorf("store runtime %s: other instances changed it %d times meanwhile; try again", key, tries)
		}
	}
}

// hookRouter has the router tell the other instances of the blocks made
// or lifted here, and read the links again before it fails a delivery
// to a room in no link: another instance may have linked it a moment
// ago and committed to it before its notice was read here. Call it
// from startCluster, before the router starts.
func (c *clusterPart) hookRouter() {
	s := c.s
	s.router.OnBlocksChanged = func() { s.changed(changedBlocks) }
	here := s.router.OnPresence
	s.router.OnPresence = func() {
		if here != nil {
			here()
		}
		s.changed(changedPresence)
	}
	s.router.Relink = func(ctx context.Context) {
		if err := s.resyncLinks(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("read the links again for a room in none", "err", err)
		}
	}
}

// syncChanges keeps this instance's links, people and blocks those of
// the store, as other instances change them, until ctx ends. Call it
// from the cluster part's run.
func (c *clusterPart) syncChanges(ctx context.Context) {
	// The parts to read again, gathered while a reading runs: a burst
	// of notices is one reading. "" is every part.
	var mu sync.Mutex
	due := map[string]bool{}
	wake := make(chan struct{}, 1)
	want := func(part string) {
		mu.Lock()
		due[part] = true
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	unsubscribe, err := c.node.OnChange(want)
	if err != nil {
		c.log.Warn("other instances' changes are read every "+resyncEvery.String()+" only", "err", err)
	} else {
		defer unsubscribe()
	}
	// What changed between this instance's start and the subscription.
	want("")
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			want("")
			continue
		case <-wake:
		}
		mu.Lock()
		parts := due
		due = map[string]bool{}
		mu.Unlock()
		for _, p := range allParts {
			if !parts[p] && !parts[""] {
				continue
			}
			if err := c.resync(ctx, p); err != nil && ctx.Err() == nil {
				c.log.Warn("read a change another instance made", "part", p, "err", err)
			}
		}
	}
}

// resync reads part again from the store and puts it in place.
func (c *clusterPart) resync(ctx context.Context, part string) error {
	switch part {
	case changedLinks:
		return c.s.resyncLinks(ctx)
	case changedPeople:
		return c.s.resyncPeople(ctx)
	case changedBlocks:
		return c.s.router.ReloadBlocks(ctx)
	case changedPresence:
		changed, err := c.s.router.ReloadPresence(ctx)
		if changed {
			c.s.wakePersonalRooms()
		}
		return err
	}
	return nil
}

// resyncLinks puts the stored link overlay in place if it is not.
func (s *Service) resyncLinks(ctx context.Context) error {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	o, _, _, err := storedOverlay[linkOverlay](ctx, s, overlayKey)
	if err != nil || sameJSON(o, s.overlay) {
		return err
	}
	links, err := effectiveLinks(s.cfg, o)
	if err != nil {
		return fmt.Errorf("links changed on another instance do not fit this one's config (keeping the links in place): %w", err)
	}
	s.overlay = o
	s.log.Info("links changed on another instance", "links", len(links))
	return s.applyLinks(ctx, links, o.Relay)
}

// resyncPeople puts the stored people overlay in place if it is not.
func (s *Service) resyncPeople(ctx context.Context) error {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	o, _, _, err := storedOverlay[peopleOverlay](ctx, s, peopleKey)
	if err != nil || sameJSON(o, s.peopleOverlay) {
		return err
	}
	eff, err := effectivePeople(s.cfg, o, "")
	if err != nil {
		return fmt.Errorf("people changed on another instance do not fit this one's config (keeping the people in place): %w", err)
	}
	if err := s.usePeople(eff); err != nil {
		return fmt.Errorf("people changed on another instance (keeping the people in place): %w", err)
	}
	s.peopleOverlay = o
	s.log.Info("people changed on another instance", "people", len(eff.People))
	return nil
}

// sameJSON reports whether two overlays are stored alike (a nil and an
// empty list are).
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
