package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// seen tells an SQLite store, without a query, that an event id or an
// origin remote id was never stored: the question an Accept asks to find
// duplicates. It is a Bloom filter over every event id and every room's
// remote id in the database, loaded in the background at Open, and over
// every one written since. A key it has not seen was never stored; one it
// may have seen (about one in a hundred of those never stored) is looked
// up in the database.
//
// Asking the database at each Accept was the costliest part of accepting:
// a statement run once per message finds SQLite's pages and code out of
// the CPU's caches, while the same statements run together at the commit
// find them warm.
//
// Only retention deletes from either table, and only keys of events long
// past, so a scan begun after the filter began taking the keys written
// finds every key written before that is still stored.
type seen struct {
	cur  atomic.Pointer[bloom] // answers; holds every key once ready
	next atomic.Pointer[bloom] // a larger one being loaded, also written
	// ready: cur holds every key stored. Until then every key may have
	// been seen.
	ready   atomic.Bool
	loading atomic.Bool // a load is in progress

	seed maphash.Seed

	mu     sync.Mutex
	closed bool
	ctx    context.Context // canceled at Close, to end a load
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// seenCapacity is the number of keys the first filter holds at its
// intended rate of false positives: 1.25 MB. (A variable for tests.)
var seenCapacity = 1 << 20

func (f *seen) init() {
	f.seed = maphash.MakeSeed()
	f.cur.Store(newBloom(seenCapacity))
	f.ctx, f.cancel = context.WithCancel(context.Background())
}

// seenKey is a key's hash: the kind of key first, so that an event id
// and a remote id never share one by construction.
type seenKey uint64

func (f *seen) eventKey(id string) seenKey {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteByte('e')
	h.WriteString(id)
	return seenKey(h.Sum64())
}

func (f *seen) remoteKey(k remoteKey) seenKey {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteByte('r')
	h.WriteString(k.network)
	h.WriteByte(0)
	h.WriteString(k.room)
	h.WriteByte(0)
	h.WriteString(k.remoteID)
	return seenKey(h.Sum64())
}

// mayHave is false only for a key never stored.
func (f *seen) mayHave(k seenKey) bool {
	return !f.ready.Load() || f.cur.Load().has(k)
}

// remember records a key about to be written, in the filter that
// answers and in the one being loaded. The caller holds the batch
// (s.wmu), or the delivery records' lock: see startGrowing.
func (s *Store) remember(k seenKey) {
	f := &s.seen
	if next := f.next.Load(); next != nil {
		next.add(k)
	}
	if f.cur.Load().add(k) {
		s.loadSeen()
	}
}

// loadSeen fills the filter from the database in the background: from
// Open, and again into a filter twice as large whenever the one that
// answers holds more keys than its capacity (its false positives would
// grow). Writes go on meanwhile; the filter that answers stays correct.
func (s *Store) loadSeen() {
	f := &s.seen
	if !f.loading.CompareAndSwap(false, true) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.loading.Store(false)
		return
	}
	f.wg.Go(func() {
		defer func() {
			f.loading.Store(false)
			// A key added since the last look may have filled it.
			if f.ready.Load() && f.cur.Load().full() {
				s.loadSeen()
			}
		}()
		for {
			into := f.cur.Load()
			if f.ready.Load() {
				if !into.full() {
					return
				}
				into = s.startGrowing(2 * int(into.n.Load()))
			}
			began := time.Now()
			n, err := s.scanKeys(f.ctx, into)
			if err != nil {
				if f.ctx.Err() == nil {
					s.log.Warn("store: could not load the stored ids; accepts look up duplicates in the database", "err", err)
				}
				if f.next.Swap(nil) != nil {
					into = f.cur.Load()
					into.limit.Store(2 * into.n.Load()) // not to try again at every key
				}
				return
			}
			if into != f.cur.Load() {
				f.cur.Store(into)
				f.next.Store(nil)
			}
			f.ready.Store(true)
			s.log.Debug("store: stored ids loaded", "keys", n, "capacity", into.capacity, "took", time.Since(began))
		}
	})
}

// startGrowing makes a filter of capacity the one being loaded. Every key
// written but not committed is put in it at once: a scan would miss it.
func (s *Store) startGrowing(capacity int) *bloom {
	next := newBloom(capacity)
	// Holding the batch stops staging; holding the delivery records'
	// lock stops Delivered. Each adds to next from now on.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	d := &s.delivered
	d.mu.Lock()
	defer d.mu.Unlock()
	s.seen.next.Store(next)
	for _, rows := range [][]acceptRow{s.batch.rowsInTx, s.batch.rows} {
		for _, r := range rows {
			k := s.rowKeys(r)
			next.add(k.event)
			if r.origin.remoteID != "" {
				next.add(k.origin)
			}
		}
	}
	for k := range d.remote {
		next.add(s.seen.remoteKey(k))
	}
	return next
}

// scanKeys adds every stored event id and remote id to into.
func (s *Store) scanKeys(ctx context.Context, into *bloom) (int, error) {
	n := 0
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM events`)
	if err != nil {
		return 0, fmt.Errorf("read event ids: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return n, fmt.Errorf("read event ids: %w", err)
		}
		into.add(s.seen.eventKey(id))
		n++
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return n, fmt.Errorf("read event ids: %w", err)
	}
	rows, err = s.r.QueryContext(ctx, `SELECT network, room, remote_id FROM remote_ids`)
	if err != nil {
		return n, fmt.Errorf("read remote ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k remoteKey
		if err := rows.Scan(&k.network, &k.room, &k.remoteID); err != nil {
			return n, fmt.Errorf("read remote ids: %w", err)
		}
		into.add(s.seen.remoteKey(k))
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read remote ids: %w", err)
	}
	return n, nil
}

// close stops a load in progress and waits for it.
func (f *seen) close() {
	f.mu.Lock()
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// bloom is a blocked Bloom filter: the bits of a key all lie in one
// 512-bit block, one cache line, so that a lookup costs one cache miss.
// Its bits are set atomically: writers add while Accept reads.
type bloom struct {
	words    []atomic.Uint64
	blocks   uint64
	capacity int          // keys it holds at its intended rate of false positives
	n        atomic.Int64 // keys added, repeats included
	limit    atomic.Int64 // keys beyond which it asks to grow
}

const (
	bloomBitsPerKey = 10
	bloomHashes     = 7 // bits set per key, 9 bits of the hash each
	bloomBlockWords = 8
)

func newBloom(capacity int) *bloom {
	blocks := max(1, (capacity*bloomBitsPerKey+511)/512)
	b := &bloom{words: make([]atomic.Uint64, blocks*bloomBlockWords), blocks: uint64(blocks), capacity: capacity}
	b.limit.Store(int64(capacity))
	return b
}

func (b *bloom) full() bool { return b.n.Load() > b.limit.Load() }

// block is the key's block, and a second hash for the bits within it.
func (b *bloom) block(k seenKey) ([]atomic.Uint64, uint64) {
	hi, _ := bits.Mul64(uint64(k), b.blocks)
	i := hi * bloomBlockWords
	// The multiplication took the high bits for the block; the bits
	// within it come from the hash mixed again.
	return b.words[i : i+bloomBlockWords], uint64(k) * 0x9e3779b97f4a7c15
}

// add sets the key's bits and tells whether the filter now holds more
// keys than its capacity.
func (b *bloom) add(k seenKey) bool {
	words, h := b.block(k)
	for range bloomHashes {
		bit := h & 511
		words[bit/64].Or(1 << (bit % 64))
		h >>= 9
	}
	return b.n.Add(1) > b.limit.Load()
}

func (b *bloom) has(k seenKey) bool {
	words, h := b.block(k)
	for range bloomHashes {
		bit := h & 511
		if words[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
		h >>= 9
	}
	return true
}
