package xmpp

import (
	"container/list"
	"slices"
)

// lru is a map that forgets its least recently used entries beyond max.
// It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // of *lruEntry, most recent first
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry[K, V]).key)
	}
}

func (c *lru[K, V]) len() int { return c.order.Len() }

// diffReactions compares the reaction set a user had on a message with
// the one they now send (XEP-0444 sends the whole set each time): the
// keys added and the keys taken back, in a stable order.
func diffReactions(before, after []string) (added, removed []string) {
	for _, k := range after {
		if !slices.Contains(before, k) && !slices.Contains(added, k) {
			added = append(added, k)
		}
	}
	for _, k := range before {
		if !slices.Contains(after, k) && !slices.Contains(removed, k) {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// applyReaction is the set after adding or removing one key.
func applyReaction(set []string, key string, remove bool) []string {
	i := slices.Index(set, key)
	switch {
	case remove && i >= 0:
		return slices.Delete(slices.Clone(set), i, i+1)
	case !remove && i < 0:
		return append(slices.Clone(set), key)
	}
	return set
}

// Per-room memory bounds.
const (
	maxIDsPerRoom       = 5000
	maxReactionsPerRoom = 2000
)

// sentInfo is what we remember of a message we sent: its client id (for
// corrections and old-style retractions, which use it) and who sent it.
type sentInfo struct {
	clientID string
	from     string // the sending JID (a puppet, or the bot)
}

// roomIDs maps a room's message ids: the client ids (and origin ids) of
// the messages seen to the stanza-id the room gave them, which is what
// the bridge knows them by, and the stanza-ids of our own messages to
// what sending them took.
type roomIDs struct {
	byClient *lru[string, string]   // client or origin id -> stanza-id
	sent     *lru[string, sentInfo] // stanza-id -> ours
	// reactions: target stanza-id + "\x00" + reactor id -> that reactor's set.
	reactions *lru[string, []string]
	// authors: stanza-id -> the nick that sent it, for replies' "to".
	authors *lru[string, string]
}

func newRoomIDs() *roomIDs {
	return &roomIDs{
		byClient:  newLRU[string, string](maxIDsPerRoom),
		sent:      newLRU[string, sentInfo](maxIDsPerRoom),
		reactions: newLRU[string, []string](maxReactionsPerRoom),
		authors:   newLRU[string, string](maxIDsPerRoom),
	}
}

// resolve maps an id a message refers to onto the room's stanza-id when
// it is a client id we saw; otherwise it is taken to be a stanza-id.
func (r *roomIDs) resolve(id string) string {
	if sid, ok := r.byClient.get(id); ok {
		return sid
	}
	return id
}

// seen records a message's ids.
func (r *roomIDs) seen(stanzaID string, clientIDs ...string) {
	if stanzaID == "" {
		return
	}
	for _, c := range clientIDs {
		if c != "" && c != stanzaID {
			r.byClient.put(c, stanzaID)
		}
	}
}
