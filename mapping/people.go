package mapping

import (
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Person is one of the configured people: one human with accounts on
// several networks, who appears as one sender wherever they write from.
type Person struct {
	ID     string // the stable id, the key in the config
	Name   string // display name
	Avatar string // URL of their picture; "" for none
	Home   string // home network: where they are told of failures
	// Accounts maps a network name to their account there (an IRC
	// account, a JID, an MXID, an MQTT device id, ...).
	Accounts map[string]string
}

// AccountKey maps an account id to the form in which two ids of the same
// account are equal on one network: IRC accounts ignore case, a JID its
// resource and case. nil compares ids exactly.
type AccountKey func(id string) string

// People holds the configured people and answers which person an account
// belongs to (bridge.People). It is safe for concurrent use; Replace
// swaps every person at once.
type People struct {
	set atomic.Pointer[peopleSet]
}

type peopleSet struct {
	byID      map[string]*Person
	byAccount map[accountRef]*Person
	keys      map[string]AccountKey // network name: its account key, if any
}

type accountRef struct{ network, key string }

func (s *peopleSet) ref(network, id string) accountRef {
	if k := s.keys[network]; k != nil {
		id = k(id)
	}
	return accountRef{network, id}
}

// NewPeople builds the set; see Replace.
func NewPeople(people []Person, keys map[string]AccountKey) (*People, error) {
	p := &People{}
	if err := p.Replace(people, keys); err != nil {
		return nil, err
	}
	return p, nil
}

// Replace puts a new set of people in place, only if it is valid: ids
// unique and set, no account empty or claimed by two people (compared by
// keys, the account key of each network that has one). Errors name
// people.<id>..., as the config does, which has checked all this already.
func (p *People) Replace(people []Person, keys map[string]AccountKey) error {
	next := &peopleSet{byID: map[string]*Person{}, byAccount: map[accountRef]*Person{}, keys: keys}
	sorted := make([]*Person, len(people))
	for i := range people {
		cp := people[i]
		sorted[i] = &cp
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, per := range sorted {
		if per.ID == "" {
			return fmt.Errorf("people: a person without an id")
		}
		if _, dup := next.byID[per.ID]; dup {
			return fmt.Errorf("people.%s: two people with this id", per.ID)
		}
		next.byID[per.ID] = per
		for _, network := range sortedKeys(per.Accounts) {
			id := per.Accounts[network]
			if id == "" {
				return fmt.Errorf("people.%s.accounts.%s: empty account id", per.ID, network)
			}
			ref := next.ref(network, id)
			if other, dup := next.byAccount[ref]; dup {
				return fmt.Errorf("people.%s.accounts.%s: %q is already an account of %s", per.ID, network, id, other.ID)
			}
			next.byAccount[ref] = per
		}
	}
	p.set.Store(next)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Lookup returns the person whose account on network is id.
func (p *People) Lookup(network, id string) (Person, bool) {
	if p == nil || id == "" {
		return Person{}, false
	}
	s := p.set.Load()
	if s == nil {
		return Person{}, false
	}
	per, ok := s.byAccount[s.ref(network, id)]
	if !ok {
		return Person{}, false
	}
	return *per, true
}

// Person returns the person with the id.
func (p *People) Person(id string) (Person, bool) {
	if p == nil {
		return Person{}, false
	}
	s := p.set.Load()
	if s == nil {
		return Person{}, false
	}
	per, ok := s.byID[id]
	if !ok {
		return Person{}, false
	}
	return *per, true
}

// All returns every person, sorted by id.
func (p *People) All() []Person {
	if p == nil {
		return nil
	}
	s := p.set.Load()
	if s == nil {
		return nil
	}
	out := make([]Person, 0, len(s.byID))
	for _, id := range sortedKeys(s.byID) {
		out = append(out, *s.byID[id])
	}
	return out
}

// PersonOf implements bridge.People.
func (p *People) PersonOf(network, id string) (bridge.Person, bool) {
	per, ok := p.Lookup(network, id)
	if !ok {
		return bridge.Person{}, false
	}
	return bridge.Person{ID: per.ID, Name: per.Name, Home: per.Home}, true
}

// Account implements bridge.People: the person's account on network.
func (p *People) Account(person, network string) (string, bool) {
	per, ok := p.Person(person)
	if !ok {
		return "", false
	}
	id, ok := per.Accounts[network]
	return id, ok && id != ""
}

var _ bridge.People = (*People)(nil)
