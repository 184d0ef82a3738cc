package adapters

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
)

// Personal connections: the contract between the service, the router
// and an adapter that can speak as a person through their own account
// (an IRC connection logged in to their account, an XMPP session of
// theirs, their Matrix user through the appservice).
//
//   - The service hands the adapter of each network the accounts of
//     people on that network that carry credentials (PersonalAccounts),
//     through UsePeople, before Start, and again with the whole new list
//     after a reload: the adapter brings connections up for accounts that
//     are new or changed and down for those gone.
//   - The router marks every event of a person with Sender.Person (and
//     Home), whichever of their accounts it came from, when the adapter
//     that read it vouched for the account (Sender.Authenticated).
//   - On delivery, an adapter that holds a personal connection for
//     Delivery.Event.Head().Sender.Person that is up sends through it,
//     and no puppet of theirs joins. Otherwise it sends as it does for
//     anyone, through the puppet of Sender.Puppet(): one puppet per
//     person, named after them.
//   - What a personal connection sends is the adapter's own echo, never
//     bridged back; what the person sends from another client of the same
//     account is read as from them, once.
//
// Secrets stay inside: PersonalAccount prints and logs without them.

// PersonalAccount is a person's account on one network, with the
// credentials to speak as them there.
type PersonalAccount struct {
	Person string // the person's id, as Sender.Person carries it
	Name   string // their display name
	Home   string // their home network, as Sender.Home carries it
	ID     string // their account on the network: IRC account, JID, MXID, ...
	// Credentials, as the network type allows them (config.AccountRules).
	Password     string // IRC SASL PLAIN, XMPP
	Token        string // Matrix personal access token; the web page's personal token
	DoublePuppet bool   // Matrix: speak as them through the appservice
}

// The states of a person's connection, as PersonalStatus reports them;
// a failed one is PersonalFailed(why).
const (
	PersonalConnecting = "connecting"
	PersonalConnected  = "connected"
	personalFailed     = "failed: "
)

// PersonalFailed is the state of a connection that failed for why.
func PersonalFailed(why string) string { return personalFailed + why }

// IsPersonalFailed reports whether state is a failed connection's.
func IsPersonalFailed(state string) bool { return strings.HasPrefix(state, personalFailed) }

// PersonalFailure is why state says its connection failed; ok is false
// for the other states.
func PersonalFailure(state string) (why string, ok bool) {
	return strings.CutPrefix(state, personalFailed)
}

// A personal login the server refused is tried again only rarely: the
// password is wrong until someone changes it, and a server that sees a
// login fail every few seconds may lock the account.
const (
	PersonalLoginRetryMin = 10 * time.Minute
	PersonalLoginRetryMax = 6 * time.Hour
)

// PersonalStatuser is implemented by adapters that hold personal
// connections: the state of each person's, by person id: "connecting",
// "connected" or "failed: <reason>" (never a secret). /api/status,
// /status and the metrics show it.
type PersonalStatuser interface {
	PersonalStatus() map[string]string
}

// PeopleUser is implemented by adapters that hold personal connections.
// UsePeople replaces the whole list; it is called before Start and may
// be called again while the adapter runs.
type PeopleUser interface {
	UsePeople(accounts []PersonalAccount)
}

// BlockRef is who a ban or kick of this account in a room is reported
// under: the person (bridge.Sender.BlockRef), so that it keeps them out
// of that room whichever account they write from, and their puppet too.
func (a PersonalAccount) BlockRef() bridge.SenderRef {
	return bridge.Sender{Person: a.Person, Home: a.Home}.BlockRef()
}

// String shows the account without its secrets.
func (a PersonalAccount) String() string {
	var creds []string
	if a.Password != "" {
		creds = append(creds, "password")
	}
	if a.Token != "" {
		creds = append(creds, "token")
	}
	if a.DoublePuppet {
		creds = append(creds, "double_puppet")
	}
	return fmt.Sprintf("%s (%s) as %s with %s", a.Person, a.Name, a.ID, strings.Join(creds, ", "))
}

// LogValue logs the account without its secrets.
func (a PersonalAccount) LogValue() slog.Value { return slog.StringValue(a.String()) }

// PersonalAccounts lists, for each network, the accounts of people there
// that carry credentials, sorted by person: what the service hands each
// PeopleUser adapter. Identity-only accounts are not in it.
func PersonalAccounts(c *config.Config) map[string][]PersonalAccount {
	out := map[string][]PersonalAccount{}
	people, _ := c.PeopleMapping() // sorted by id
	for _, p := range people {
		for network := range p.Accounts {
			a := c.People[p.ID].Accounts[network]
			if len(a.Credentials()) == 0 {
				continue
			}
			out[network] = append(out[network], PersonalAccount{
				Person: p.ID, Name: p.Name, Home: p.Home, ID: a.ID,
				Password: a.Password, Token: a.Token, DoublePuppet: a.DoublePuppet,
			})
		}
	}
	return out
}

// PersonalRoomer is implemented by adapters whose personal connections
// join rooms (IRC channels, MUCs). PersonalRooms sets the whole set of
// rooms on the adapter's network that person's connection is to be in:
// the rooms of every link they take part in (see bridge.Router's
// PeopleRooms). The adapter joins what is new and leaves what is gone,
// at once if the connection is up, else once it is; only rooms it
// bridges are joined. It is called before Start and again whenever the
// set may have changed; it must not block. A message the person sends
// may still take their connection into its room on demand. The Matrix
// adapter does not implement it: a person's own Matrix user is a member
// where they put it, and joins a room only to post a message of theirs.
type PersonalRoomer interface {
	PersonalRooms(person string, rooms []string)
}

// PersonalAwayer is implemented by adapters whose personal connections
// can say the person is away (IRC's AWAY, XMPP's presence show): the
// service marks a person away once they have been idle on their home
// network for their away_after, and back when they do something there
// again. PersonalAway sets the state of person's connection, at once if
// it is up, else once it comes up (a new connection starts back); away
// with message, or back (message unused). It must not block.
type PersonalAwayer interface {
	PersonalAway(person string, away bool, message string)
}

// RoomWants keeps, for an adapter, the rooms each person's connection
// is to be in, as PersonalRooms sets them; it is not safe for
// concurrent use (the adapter's lock guards it).
type RoomWants map[string]map[string]bool

// Set replaces person's rooms and returns those added and those removed,
// sorted.
func (w RoomWants) Set(person string, rooms []string) (added, removed []string) {
	old := w[person]
	next := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		next[r] = true
		if !old[r] {
			added = append(added, r)
		}
	}
	for r := range old {
		if !next[r] {
			removed = append(removed, r)
		}
	}
	if len(next) == 0 {
		delete(w, person)
	} else {
		w[person] = next
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// Wants reports whether person's connection is to be in room.
func (w RoomWants) Wants(person, room string) bool { return w[person][room] }

// Of is person's rooms, sorted.
func (w RoomWants) Of(person string) []string { return slices.Sorted(maps.Keys(w[person])) }
