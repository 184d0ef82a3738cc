package service

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/mapping"
)

// People come from two places, as links do (links.go): the config
// file's people are the base; what the provisioning API changes is an
// overlay kept in the store and laid over the base, so runtime changes
// survive restarts and config reloads. A person put through the API is
// kept whole in the overlay and from then on overrides the file's
// person of that id; a file person deleted through the API stays hidden
// until the overlay is changed again for that id. The overlay holds
// credentials as given (the config file holds them too); nothing shows
// them.
type peopleOverlay struct {
	People  map[string]*config.Person `json:"people,omitempty"`  // put at runtime
	Deleted []string                  `json:"deleted,omitempty"` // file people deleted at runtime
}

const peopleKey = "people"

func (o peopleOverlay) clone() peopleOverlay {
	c := peopleOverlay{People: map[string]*config.Person{}, Deleted: slices.Clone(o.Deleted)}
	for id, p := range o.People {
		c.People[id] = p.Clone()
	}
	return c
}

// over lays the overlay over the file's people, as copies.
func (o peopleOverlay) over(base map[string]*config.Person) map[string]*config.Person {
	eff := make(map[string]*config.Person, len(base)+len(o.People))
	for id, p := range base {
		if !slices.Contains(o.Deleted, id) {
			eff[id] = p.Clone()
		}
	}
	for id, p := range o.People {
		eff[id] = p.Clone()
	}
	return eff
}

func (s *Service) loadPeopleOverlay(ctx context.Context) (err error) {
	s.peopleOverlay, _, _, err = storedOverlay[peopleOverlay](ctx, s, peopleKey)
	return err
}

// effectivePeople returns cfg with the overlay laid over its people,
// validated as the config file's people are; changed, if set, is the
// person an API change is about, whom errors blame first.
func effectivePeople(cfg *config.Config, o peopleOverlay, changed string) (*config.Config, error) {
	people := o.over(cfg.People)
	if err := cfg.CheckPeople(people, changed); err != nil {
		return nil, err
	}
	eff := *cfg
	eff.People = people
	return &eff, nil
}

// usePeople puts a validated set of people (eff's) in place: the
// router's, and each adapter's personal accounts, which it brings up or
// down to match. Start, reloads and API changes all go through here.
func (s *Service) usePeople(eff *config.Config) error {
	if s.people == nil {
		p, err := mapping.NewPeople(eff.PeopleMapping())
		if err != nil {
			return err
		}
		s.people = p
	} else if err := s.people.Replace(eff.PeopleMapping()); err != nil {
		return err
	}
	s.peopleCfg = eff
	s.away.use(eff.People)
	personal := adapters.PersonalAccounts(eff)
	for name, a := range s.nets.all() {
		if pu, ok := a.(adapters.PeopleUser); ok {
			pu.UsePeople(personal[name])
		}
	}
	s.wakePersonalRooms() // a new person's connections go where they are
	return nil
}

// changePeople applies one runtime change to a copy of the overlay; the
// result is validated as the config file would be, stored, and only
// then put in place. id is the person it changes.
func (s *Service) changePeople(ctx context.Context, id string, edit func(eff map[string]*config.Person, o *peopleOverlay) error) error {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	var eff *config.Config
	o, err := storeOverlay(ctx, s, peopleKey, s.peopleOverlay, func(cur peopleOverlay) (peopleOverlay, error) {
		o := cur.clone()
		if err := edit(cur.over(s.cfg.People), &o); err != nil {
			return o, err
		}
		var err error
		if eff, err = effectivePeople(s.cfg, o, id); err != nil {
			return o, err
		}
		// The same check the router's Replace makes, before anything is
		// stored.
		_, err = mapping.NewPeople(eff.PeopleMapping())
		return o, err
	})
	if err != nil {
		return err
	}
	s.changed(changedPeople)
	s.peopleOverlay = o
	return s.usePeople(eff)
}

// People implements httpapi.People: every person as the API shows it,
// without secrets, sorted by id.
func (s *Service) People() []httpapi.Person {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	out := []httpapi.Person{}
	for _, id := range slices.Sorted(maps.Keys(s.peopleCfg.People)) {
		out = append(out, s.personViewLocked(id))
	}
	return out
}

func (s *Service) personViewLocked(id string) httpapi.Person {
	src := "config"
	if _, changed := s.peopleOverlay.People[id]; changed {
		src = "runtime"
	}
	p := s.peopleCfg.People[id]
	return httpapi.PersonView(id, p, src, s.cfg.PeopleNotes(map[string]*config.Person{id: p}))
}

// Person implements httpapi.People.
func (s *Service) Person(id string) (httpapi.Person, bool) {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	if _, ok := s.peopleCfg.People[id]; !ok {
		return httpapi.Person{}, false
	}
	return s.personViewLocked(id), true
}

// PutPerson implements httpapi.People: creates or replaces the person
// with the id; credentials the request leaves out are kept from the
// current person's account of the same id on that network.
func (s *Service) PutPerson(ctx context.Context, id string, in httpapi.PersonInput) (created bool, err error) {
	err = s.changePeople(ctx, id, func(eff map[string]*config.Person, o *peopleOverlay) error {
		cur, ok := eff[id]
		created = !ok
		p, err := in.Person(id, cur)
		if err != nil {
			return err
		}
		o.People[id] = p
		o.Deleted = slices.DeleteFunc(o.Deleted, func(d string) bool { return d == id })
		return nil
	})
	if err == nil {
		s.log.Info("person put through the API", "person", id, "created", created)
	}
	return created, err
}

// DeletePerson implements httpapi.People: a runtime person is dropped,
// a file person hidden.
func (s *Service) DeletePerson(ctx context.Context, id string) error {
	err := s.changePeople(ctx, id, func(eff map[string]*config.Person, o *peopleOverlay) error {
		if _, ok := eff[id]; !ok {
			return fmt.Errorf("people.%s: %w", id, httpapi.ErrPersonNotFound)
		}
		delete(o.People, id)
		if _, inFile := s.cfg.People[id]; inFile && !slices.Contains(o.Deleted, id) {
			o.Deleted = append(o.Deleted, id)
		}
		return nil
	})
	if err == nil {
		s.log.Info("person deleted through the API", "person", id)
	}
	return err
}

// The rooms of people's personal connections follow where they are:
// each adapter that joins rooms for them (adapters.PersonalRoomer) gets,
// for every person with an account on its network, the rooms there of
// the links they take part in (bridge.Router's PeopleRooms). Whatever
// may change that (a person joining or leaving a room, a link or the
// people changing) wakes one goroutine that hands every such adapter
// its sets again; each adapter acts on the difference only.

// wakePersonalRooms has the rooms handed over again, soon; it never
// blocks.
func (s *Service) wakePersonalRooms() {
	select {
	case s.roomsWake <- struct{}{}:
	default:
	}
}

// runPersonalRooms hands the rooms over each time it is woken, until
// the service stops.
func (s *Service) runPersonalRooms() {
	for {
		select {
		case <-s.ops.Done():
			return
		case <-s.roomsWake:
		}
		s.linkMu.Lock()
		personal := adapters.PersonalAccounts(s.peopleCfg)
		rooms := s.router.PeopleRooms()
		for name, a := range s.nets.all() {
			personalRooms(name, a, personal[name], rooms)
		}
		s.linkMu.Unlock()
	}
}

// personalRooms hands adapter a of network name, if it joins rooms for
// people, the rooms there of each person with an account in accts.
func personalRooms(name string, a adapters.Adapter, accts []adapters.PersonalAccount, rooms map[string][]bridge.RoomAddr) {
	pr, ok := a.(adapters.PersonalRoomer)
	if !ok {
		return
	}
	for _, acct := range accts {
		var here []string
		for _, r := range rooms[acct.Person] {
			if r.Network == name {
				here = append(here, r.Room)
			}
		}
		pr.PersonalRooms(acct.Person, here)
	}
}
