// Package mapping holds the rules that tie networks together: which rooms
// are linked, and how a sender from one network appears on another.
package mapping

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/switchboard-chat/switchboard/bridge"
)

// ParseRoom parses a room address "network:room". The room part is
// everything after the first colon, so Matrix ids keep theirs.
func ParseRoom(s string) (bridge.RoomAddr, error) {
	network, room, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return bridge.RoomAddr{}, fmt.Errorf("room address %q: want network:room", s)
	case network == "":
		return bridge.RoomAddr{}, fmt.Errorf("room address %q: empty network name", s)
	case strings.TrimSpace(room) == "":
		return bridge.RoomAddr{}, fmt.Errorf("room address %q: empty room", s)
	case strings.ContainsAny(s, " \t\r\n\x00"):
		return bridge.RoomAddr{}, fmt.Errorf("room address %q: contains whitespace or control characters", s)
	}
	return bridge.RoomAddr{Network: network, Room: room}, nil
}

// Links is the set of room links, and the rooms in relay mode. It is safe
// for concurrent use; Replace swaps the whole set at once.
type Links struct {
	mu     sync.RWMutex
	links  map[string][]bridge.RoomAddr
	byRoom map[bridge.RoomAddr]string
	relay  map[bridge.RoomAddr]bool
}

// NewLinks builds the link set. A room may belong to one link only. A link
// of one room is allowed: its events are stored, and delivered to rooms
// added later.
func NewLinks(links map[string][]bridge.RoomAddr) (*Links, error) {
	l := &Links{relay: map[bridge.RoomAddr]bool{}}
	if err := l.Replace(links); err != nil {
		return nil, err
	}
	return l, nil
}

// Replace validates a new link set and, only if it is valid, puts it in
// place of the current one.
func (l *Links) Replace(links map[string][]bridge.RoomAddr) error {
	next := &Links{links: map[string][]bridge.RoomAddr{}, byRoom: map[bridge.RoomAddr]string{}}
	names := make([]string, 0, len(links))
	for name := range links {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := next.add(name, links[name]); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.links, l.byRoom = next.links, next.byRoom
	l.mu.Unlock()
	return nil
}

// All returns a copy of every link.
func (l *Links) All() map[string][]bridge.RoomAddr {
	l.mu.RLock()
	defer l.mu.RUnlock()
	all := make(map[string][]bridge.RoomAddr, len(l.links))
	for name, rooms := range l.links {
		all[name] = append([]bridge.RoomAddr(nil), rooms...)
	}
	return all
}

// SetRelayed puts exactly these rooms in relay mode.
func (l *Links) SetRelayed(rooms []bridge.RoomAddr) {
	relay := make(map[bridge.RoomAddr]bool, len(rooms))
	for _, r := range rooms {
		relay[r] = true
	}
	l.mu.Lock()
	l.relay = relay
	l.mu.Unlock()
}

// Relayed implements the router's optional relay lookup: whether
// deliveries into room go through the bot.
func (l *Links) Relayed(room bridge.RoomAddr) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.relay[room]
}

func (l *Links) add(name string, rooms []bridge.RoomAddr) error {
	if len(rooms) == 0 {
		return fmt.Errorf("links.%s: a link needs at least one room", name)
	}
	seen := map[bridge.RoomAddr]bool{}
	for i, r := range rooms {
		if seen[r] {
			return fmt.Errorf("links.%s[%d]: room %s listed twice", name, i, r)
		}
		seen[r] = true
		if other, ok := l.byRoom[r]; ok {
			return fmt.Errorf("links.%s[%d]: room %s is already in link %q", name, i, r, other)
		}
	}
	l.links[name] = append([]bridge.RoomAddr(nil), rooms...)
	for _, r := range rooms {
		l.byRoom[r] = name
	}
	return nil
}

// LinkOf implements bridge.Links.
func (l *Links) LinkOf(room bridge.RoomAddr) (string, []bridge.RoomAddr, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	name, ok := l.byRoom[room]
	if !ok {
		return "", nil, false
	}
	return name, l.links[name], true
}

// Rooms lists every linked room of one network.
func (l *Links) Rooms(network string) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var rooms []string
	for r := range l.byRoom {
		if r.Network == network {
			rooms = append(rooms, r.Room)
		}
	}
	sort.Strings(rooms)
	return rooms
}

// Names lists the links.
func (l *Links) Names() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return slices.Sorted(maps.Keys(l.links))
}
