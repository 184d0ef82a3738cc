package bridge

import "strings"

// Person is what the router needs to know of one of the configured
// people (the config's people section; mapping.People holds them).
type Person struct {
	ID   string // the stable id, the key in the config
	Name string // the configured display name
	Home string // the home network
}

// People tells the router whose accounts are whose. mapping.People
// implements it; it must be safe for concurrent use.
type People interface {
	// PersonOf returns the person whose account on network is id, by the
	// rules of the network's type (IRC accounts ignore case).
	PersonOf(network, id string) (Person, bool)
	// Account returns the person's account id on network.
	Account(person, network string) (string, bool)
}

// PersonPrefix starts the id of a person's puppet identity: see
// Sender.Puppet. No sender id an adapter gives has this form: IRC nicks
// and accounts, MQTT device ids and WebRTC peer ids hold no "/", Matrix
// ids start with "@", XMPP ids are JIDs with a localpart.
const PersonPrefix = "person/"

// Puppet is who s appears as where a puppet speaks for them: s itself,
// or for a person one identity whichever of their accounts they wrote
// from, so that alice writing from IRC and from XMPP has one puppet on
// Matrix, not two. That identity is their home network and
// "person/<id>", with their configured name: a template's {network}
// shows their home, {name} their name. Adapters key and name puppets by
// it (and a Matrix ghost parses back to it: the router turns a direct
// message to it into one to the person's home account).
func (s Sender) Puppet() Sender {
	if s.Person == "" {
		return s
	}
	ref := PersonRef(s.Person, s.Home)
	return Sender{Network: ref.Network, ID: ref.ID, Name: s.Name, Person: s.Person, Home: s.Home}
}

// PersonRef is the puppet identity of person, whose home network is
// home: what Sender.Puppet is for any account of theirs.
func PersonRef(person, home string) SenderRef {
	return SenderRef{Network: home, ID: PersonPrefix + person}
}

// BlockRef is who a block of s in a room is kept under: for a person,
// their puppet identity, whichever account they wrote from and whether
// their puppet or their own account was banned, so that the block keeps
// them out from every account (see Router.blocked); for anyone else s.
// Adapters report bans, kicks and their lifting under it.
func (s Sender) BlockRef() SenderRef { return s.Puppet().Ref() }

// identify sets who ev's sender is among the people: Person and Home,
// and their configured name, when the adapter vouches for the sender's
// id (Authenticated) and it is one of a person's accounts; it clears
// Person and Home otherwise, so that nothing else can claim them. It
// reports false for an event to drop: a person's rename (their name is
// the config's, whatever nick or display name an account of theirs
// takes).
func (r *Router) identify(ev Event) bool {
	h := ev.Head()
	s := &h.Sender
	s.Person, s.Home = "", ""
	if r.People == nil || !s.Authenticated || s.ID == "" {
		return true
	}
	p, ok := r.People.PersonOf(s.Network, s.ID)
	if !ok {
		return true
	}
	s.Person, s.Home = p.ID, p.Home
	if p.Name != "" {
		s.Name = p.Name
	}
	if _, ok := ev.(*Rename); ok {
		r.log.Debug("a person's rename dropped", "person", p.ID, "network", s.Network)
		return false
	}
	return true
}

// identifyMentions sets Person and Home of the people a message
// mentions, as identify does for its sender: for an account the adapter
// vouches for, or a person's puppet identity (a Matrix ghost of theirs).
// A mention grants nothing; it only decides how each network names them.
func (r *Router) identifyMentions(ev Event) {
	m, ok := ev.(*Message)
	if !ok {
		return
	}
	for i := range m.Mentions {
		s := &m.Mentions[i].Sender
		s.Person, s.Home = "", ""
		if r.People == nil || s.ID == "" {
			continue
		}
		if person, ok := strings.CutPrefix(s.ID, PersonPrefix); ok {
			s.Person, s.Home = person, s.Network
			continue
		}
		if !s.Authenticated {
			continue
		}
		if p, ok := r.People.PersonOf(s.Network, s.ID); ok {
			s.Person, s.Home = p.ID, p.Home
		}
	}
}

// mentionsFor is m as delivered to network: a mentioned person becomes
// their account there, which the adapter knows as one of its own users,
// or else their puppet identity, which it knows as a puppet; anyone else
// stays who they are. m itself, shared by every delivery, is not changed.
func (r *Router) mentionsFor(m *Message, network string) *Message {
	if len(m.Mentions) == 0 {
		return m
	}
	out := *m
	out.Mentions = make([]Mention, len(m.Mentions))
	for i, mn := range m.Mentions {
		if s := mn.Sender; s.Person != "" {
			if acc, ok := r.personAccount(s.Person, network); ok {
				mn.Sender = Sender{Network: network, ID: acc, Name: s.Name, Person: s.Person, Home: s.Home, Authenticated: true}
			} else if s.Network != network || strings.HasPrefix(s.ID, PersonPrefix) {
				mn.Sender = s.Puppet()
			}
		}
		out.Mentions[i] = mn
	}
	return &out
}

func (r *Router) personAccount(person, network string) (string, bool) {
	if r.People == nil {
		return "", false
	}
	return r.People.Account(person, network)
}

// personTo turns a direct event to a person's puppet identity (To.ID
// "person/<id>", as a Matrix ghost parses back) into one to the person's
// account on To.Network, their home; it reports false when there is no
// such account, and the event is dropped.
func (r *Router) personTo(to *Sender) bool {
	person, ok := strings.CutPrefix(to.ID, PersonPrefix)
	if !ok {
		return true
	}
	if r.People == nil {
		return false
	}
	acc, ok := r.People.Account(person, to.Network)
	if !ok {
		return false
	}
	to.ID, to.Person = acc, person
	return true
}

// homeActivity is the person whose event ev shows them at their client on
// their home network, or "": anything they do there (a message, an edit,
// a reaction, typing, a join, a topic), but not their leaving nor a
// presence the network reports for them, which their client's going
// idle or away sends.
func homeActivity(ev Event) string {
	h := ev.Head()
	if h.Sender.Person == "" || h.Origin.Network != h.Sender.Home {
		return ""
	}
	switch ev.Kind() {
	case KindLeave, KindPresence:
		return ""
	}
	return h.Sender.Person
}
