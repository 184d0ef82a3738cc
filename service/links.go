package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/mapping"
)

// Links come from two places. The config file's links are the base; what
// the provisioning API and the chat commands change is an overlay kept in
// the store and laid over the base, so runtime changes survive restarts
// and config reloads. A link changed at runtime is kept whole in the
// overlay and from then on overrides the file's version of it.
type linkOverlay struct {
	Links   map[string][]string `json:"links,omitempty"`   // created or changed at runtime
	Deleted []string            `json:"deleted,omitempty"` // file links deleted at runtime
	Relay   []string            `json:"relay,omitempty"`   // rooms in relay mode
}

// stateNamespace keeps Switchboard's own state apart from the networks':
// "@" cannot start a network name.
const (
	stateNamespace = "@switchboard"
	overlayKey     = "links"
)

func (o linkOverlay) clone() linkOverlay {
	c := linkOverlay{Links: map[string][]string{}, Deleted: slices.Clone(o.Deleted), Relay: slices.Clone(o.Relay)}
	for name, rooms := range o.Links {
		c.Links[name] = slices.Clone(rooms)
	}
	return c
}

// over lays the overlay over the file's links.
func (o linkOverlay) over(base map[string][]string) map[string][]string {
	eff := make(map[string][]string, len(base)+len(o.Links))
	for name, rooms := range base {
		if !slices.Contains(o.Deleted, name) {
			eff[name] = slices.Clone(rooms)
		}
	}
	for name, rooms := range o.Links {
		eff[name] = slices.Clone(rooms)
	}
	return eff
}

func (s *Service) loadOverlay(ctx context.Context) (err error) {
	s.state = s.store.State(stateNamespace)
	s.overlay, _, _, err = storedOverlay[linkOverlay](ctx, s, overlayKey)
	return err
}

// effectiveLinks validates the links cfg and the overlay make together.
func effectiveLinks(cfg *config.Config, o linkOverlay) (map[string][]bridge.RoomAddr, error) {
	eff := o.over(cfg.LinkRooms)
	if err := cfg.CheckLinks(eff); err != nil {
		return nil, err
	}
	parsed := make(map[string][]bridge.RoomAddr, len(eff))
	for name, rooms := range eff {
		for _, r := range rooms {
			addr, err := mapping.ParseRoom(r)
			if err != nil {
				return nil, err // CheckLinks has said so already
			}
			parsed[name] = append(parsed[name], addr)
		}
	}
	return parsed, nil
}

// changeLinks applies one runtime change: edit gets the current effective
// links and a copy of the overlay to change. The result is validated as
// the config file would be, stored, and only then put in place, with the
// adapters joining and leaving rooms to match.
func (s *Service) changeLinks(ctx context.Context, edit func(eff map[string][]string, o *linkOverlay) error) error {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	var links map[string][]bridge.RoomAddr
	o, err := storeOverlay(ctx, s, overlayKey, s.overlay, func(cur linkOverlay) (linkOverlay, error) {
		o := cur.clone()
		if err := edit(cur.over(s.cfg.LinkRooms), &o); err != nil {
			return o, err
		}
		var err error
		links, err = effectiveLinks(s.cfg, o)
		return o, err
	})
	if err != nil {
		return err
	}
	s.changed(changedLinks)
	s.overlay = o
	return s.applyLinks(ctx, links, o.Relay)
}

// applyLinks puts a validated link set in place and has the adapters join
// the rooms it adds and leave those it drops. Rooms staying linked are
// not touched, so their connections stay as they are.
func (s *Service) applyLinks(ctx context.Context, links map[string][]bridge.RoomAddr, relay []string) error {
	before := roomSet(s.links.All())
	if err := s.links.Replace(links); err != nil {
		return err
	}
	after := roomSet(links)
	s.links.SetRelayed(parseRooms(relay))
	s.ops.SetLinks(links)
	var errs []error
	for _, r := range sortedRooms(after) {
		if before[r] {
			continue
		}
		if a := s.nets.get(r.Network); a != nil {
			if err := a.Join(ctx, r.Room); err != nil {
				errs = append(errs, fmt.Errorf("%s: join: %w", r, err))
			}
		}
	}
	for _, r := range sortedRooms(before) {
		if after[r] {
			continue
		}
		if l, ok := s.nets.get(r.Network).(adapters.Leaver); ok {
			if err := l.Leave(ctx, r.Room); err != nil {
				errs = append(errs, fmt.Errorf("%s: leave: %w", r, err))
			}
		}
	}
	// People's connections follow their links' rooms.
	s.wakePersonalRooms()
	for _, err := range errs {
		s.log.Warn("link change", "err", err)
	}
	return errors.Join(errs...)
}

// parseRooms parses stored room addresses, which were valid when stored.
func parseRooms(rooms []string) []bridge.RoomAddr {
	var addrs []bridge.RoomAddr
	for _, r := range rooms {
		if addr, err := mapping.ParseRoom(r); err == nil {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

func roomSet(links map[string][]bridge.RoomAddr) map[bridge.RoomAddr]bool {
	set := map[bridge.RoomAddr]bool{}
	for _, rooms := range links {
		for _, r := range rooms {
			set[r] = true
		}
	}
	return set
}

func sortedRooms(set map[bridge.RoomAddr]bool) []bridge.RoomAddr {
	rooms := slices.Collect(maps.Keys(set))
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].String() < rooms[j].String() })
	return rooms
}

// Views implements httpapi.Links: every link as the API shows it, from
// one reading of the links.
func (s *Service) Views() map[string]httpapi.Link {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	views := map[string]httpapi.Link{}
	for name, rooms := range s.overlay.over(s.cfg.LinkRooms) {
		src := "config"
		if _, changed := s.overlay.Links[name]; changed {
			src = "runtime"
		}
		views[name] = httpapi.Link{Name: name, Rooms: rooms, Source: src}
	}
	return views
}

// CreateLink makes a new link of rooms (addresses network:room).
func (s *Service) CreateLink(ctx context.Context, name string, rooms []string) error {
	return s.changeLinks(ctx, func(eff map[string][]string, o *linkOverlay) error {
		if _, ok := eff[name]; ok {
			return fmt.Errorf("links.%s: %w", name, httpapi.ErrLinkExists)
		}
		o.Links[name] = slices.Clone(rooms)
		o.Deleted = slices.DeleteFunc(o.Deleted, func(n string) bool { return n == name })
		return nil
	})
}

// DeleteLink removes a link; its rooms are left.
func (s *Service) DeleteLink(ctx context.Context, name string) error {
	return s.changeLinks(ctx, func(eff map[string][]string, o *linkOverlay) error {
		if _, ok := eff[name]; !ok {
			return fmt.Errorf("links.%s: %w", name, httpapi.ErrLinkNotFound)
		}
		deleteLink(o, s.cfg, name)
		return nil
	})
}

func deleteLink(o *linkOverlay, cfg *config.Config, name string) {
	delete(o.Links, name)
	if _, inFile := cfg.LinkRooms[name]; inFile && !slices.Contains(o.Deleted, name) {
		o.Deleted = append(o.Deleted, name)
	}
}

// AddRoom adds a room to a link.
func (s *Service) AddRoom(ctx context.Context, name, room string) error {
	return s.changeLinks(ctx, func(eff map[string][]string, o *linkOverlay) error {
		rooms, ok := eff[name]
		if !ok {
			return fmt.Errorf("links.%s: %w", name, httpapi.ErrLinkNotFound)
		}
		o.Links[name] = append(rooms, room)
		return nil
	})
}

// RemoveRoom takes a room out of a link; a link left without rooms is
// deleted.
func (s *Service) RemoveRoom(ctx context.Context, name, room string) error {
	return s.changeLinks(ctx, func(eff map[string][]string, o *linkOverlay) error {
		rooms, ok := eff[name]
		if !ok {
			return fmt.Errorf("links.%s: %w", name, httpapi.ErrLinkNotFound)
		}
		i := slices.Index(rooms, room)
		if i < 0 {
			return fmt.Errorf("links.%s: %s: %w", name, room, httpapi.ErrRoomNotFound)
		}
		if rooms = slices.Delete(rooms, i, i+1); len(rooms) == 0 {
			deleteLink(o, s.cfg, name)
		} else {
			o.Links[name] = rooms
		}
		return nil
	})
}

// LinkOf returns the link a room belongs to and every room of it.
func (s *Service) LinkOf(room bridge.RoomAddr) (string, []bridge.RoomAddr, bool) {
	return s.links.LinkOf(room)
}

// LinkRooms puts room into anchor's link, creating a link named after
// anchor if it has none, and returns the link's name.
func (s *Service) LinkRooms(ctx context.Context, anchor, room bridge.RoomAddr) (string, error) {
	var name string
	err := s.changeLinks(ctx, func(eff map[string][]string, o *linkOverlay) error {
		name = ""
		for n, rooms := range eff {
			if slices.Contains(rooms, anchor.String()) {
				name = n
			}
		}
		if name == "" {
			name = freeLinkName(eff, anchor)
			o.Links[name] = []string{anchor.String(), room.String()}
			return nil
		}
		o.Links[name] = append(eff[name], room.String())
		return nil
	})
	return name, err
}

// UnlinkRoom takes room out of its link.
func (s *Service) UnlinkRoom(ctx context.Context, room bridge.RoomAddr) error {
	name, _, ok := s.links.LinkOf(room)
	if !ok {
		return fmt.Errorf("%s is not linked", room)
	}
	return s.RemoveRoom(ctx, name, room.String())
}

// SetRelay turns relay mode for deliveries into room on or off.
func (s *Service) SetRelay(ctx context.Context, room bridge.RoomAddr, on bool) error {
	return s.changeLinks(ctx, func(_ map[string][]string, o *linkOverlay) error {
		o.Relay = slices.DeleteFunc(o.Relay, func(r string) bool { return r == room.String() })
		if on {
			o.Relay = append(o.Relay, room.String())
			sort.Strings(o.Relay)
		}
		return nil
	})
}

// Relayed reports whether deliveries into room go through the bot.
func (s *Service) Relayed(room bridge.RoomAddr) bool { return s.links.Relayed(room) }

var linkNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// freeLinkName derives a link name from a room address ("libera:#lobby"
// becomes "libera-lobby") that no link has yet.
func freeLinkName(eff map[string][]string, room bridge.RoomAddr) string {
	base := strings.Trim(linkNameUnsafe.ReplaceAllString(room.String(), "-"), "-")
	if len(base) > 48 {
		base = base[:48]
	}
	if base == "" {
		base = "link"
	}
	name := base
	for i := 2; ; i++ {
		if _, taken := eff[name]; !taken {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}
